#!/usr/bin/env bash
# Attachment throughput (issue 24): 8 concurrent clients (one curl process each, its requests one
# after the other on one connection) upload and then download files of
# 1 MB and of 25 MB, reported as MB/s beside the yardstick of the same run: 8 concurrent psql
# processes doing `\copy … (format binary)` of the very same bytes into, and out of, a bytea
# table stored as the server stores them (no compression). Also the server's peak RSS during
# the 8 concurrent 25 MB uploads (goal: < 150 MB: no file is held whole). Every file is distinct,
# so nothing is stored once for several uploads.
# Usage: bash bench/attachments.sh [ROUNDS_1MB] [ROUNDS_25MB]   (release build; BIN= measures another)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS_1MB=${1:-40}
ROUNDS_25MB=${2:-3}
CLIENTS=8
DB=bench_attachments
PORT=${PORT:-18097}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fresh_server
trap 'kill -TERM $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
create_user bench.desk service_desk
DESK=$(token bench.desk)
CUSTOMER=$(curl -fs -X POST "$BASE/api/v1/customers" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"code":"BENCH","name":"Bench hospital"}' | json '["id"]')

# One incident per client and size (at most 50 files each).
incident() {
    curl -fs -X POST "$BASE/api/v1/incidents" -H "Authorization: Bearer $DESK" \
        -H 'Content-Type: application/json' \
        -d "{\"title\":\"bench $1\",\"customer_id\":$CUSTOMER,\"channel\":\"phone\",\"reporter\":{\"name\":\"bench\"}}" |
        json '["id"]'
}

# make_files SIZE ROUNDS: $WORK/SIZE/c<client>-<n>.bin, distinct random files.
make_files() {
    mkdir -p "$WORK/$1"
    for c in $(seq 1 $CLIENTS); do
        for n in $(seq 1 "$2"); do
            head -c "$1" /dev/urandom >"$WORK/$1/c$c-$n.bin"
        done
    done
}

# upload SIZE ROUNDS: each client uploads its ROUNDS files to its own incident, one after the
# other; prints the seconds the whole took.
upload() {
    local size=$1 rounds=$2 start end
    for c in $(seq 1 $CLIENTS); do incident "$size-$c" >"$WORK/$size/incident-$c"; done
    start=$(date +%s.%N)
    for c in $(seq 1 $CLIENTS); do
        # One curl process per client, its uploads one after the other on one connection.
        id=$(cat "$WORK/$size/incident-$c")
        args=()
        for n in $(seq 1 "$rounds"); do
            [ "$n" -gt 1 ] && args+=(--next)
            args+=(-fs -o /dev/null -H "Authorization: Bearer $DESK"
                -F "file=@$WORK/$size/c$c-$n.bin" "$BASE/api/v1/incidents/$id/attachments")
        done
        curl "${args[@]}" &
    done
    wait
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

# download SIZE: each client downloads its incident's files; prints the seconds.
download() {
    local size=$1 start end
    for c in $(seq 1 $CLIENTS); do
        id=$(cat "$WORK/$size/incident-$c")
        curl -fs "$BASE/api/v1/incidents/$id/attachments" -H "Authorization: Bearer $DESK" |
            python3 -c "import json,sys; [print(a['id']) for a in json.load(sys.stdin)['items']]" \
            >"$WORK/$size/ids-$c"
    done
    start=$(date +%s.%N)
    for c in $(seq 1 $CLIENTS); do
        # One curl process per client, its downloads one after the other on one connection.
        args=()
        while read -r attachment; do
            args+=(-o /dev/null "$BASE/api/v1/attachments/$attachment/content")
        done <"$WORK/$size/ids-$c"
        curl -fs -H "Authorization: Bearer $DESK" "${args[@]}" &
    done
    wait
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

# The yardstick: the same files as PGCOPY binary files, copied in and out by 8 psql processes.
YARD=bench_attachments_copy
yardstick_db() {
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $YARD WITH (FORCE)" 2>/dev/null
    psql "$PG/postgres" -qc "CREATE DATABASE $YARD"
    psql "$PG/$YARD" -qc "CREATE TABLE files (id BIGSERIAL PRIMARY KEY, client INT NOT NULL DEFAULT 0, data BYTEA NOT NULL); \
        ALTER TABLE files ALTER COLUMN data SET STORAGE EXTERNAL;"
}

# copy_in SIZE ROUNDS / copy_out SIZE: seconds.
copy_in() {
    local size=$1 rounds=$2 start end
    for c in $(seq 1 $CLIENTS); do
        python3 - "$WORK/$size" "$c" "$rounds" <<'PY'
import struct, sys
folder, client, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(f"{folder}/copy-{client}.pgcopy", "wb") as out:
    out.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0))
    for n in range(1, rounds + 1):
        data = open(f"{folder}/c{client}-{n}.bin", "rb").read()
        out.write(struct.pack("!hi", 2, 4) + struct.pack("!i", int(client)))
        out.write(struct.pack("!i", len(data)) + data)
    out.write(struct.pack("!h", -1))
PY
    done
    start=$(date +%s.%N)
    for c in $(seq 1 $CLIENTS); do
        psql "$PG/$YARD" -qc "\\copy files (client, data) FROM '$WORK/$size/copy-$c.pgcopy' WITH (FORMAT binary)" &
    done
    wait
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

copy_out() {
    local size=$1 start end
    start=$(date +%s.%N)
    for c in $(seq 1 $CLIENTS); do
        psql "$PG/$YARD" -qc "\\copy (SELECT data FROM files WHERE client = $c AND length(data) = $size) TO '/dev/null' WITH (FORMAT binary)" &
    done
    wait
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

rate() { echo "scale=1; $1 / 1000000 / $2" | bc -l; }

yardstick_db
echo "size clients files up_MB/s copy_in_MB/s up_ratio down_MB/s copy_out_MB/s down_ratio"
# 25 MB first: the peak RSS then is the peak of the 8 concurrent 25 MB uploads.
for spec in "25000000 $ROUNDS_25MB" "1000000 $ROUNDS_1MB"; do
    set -- $spec
    size=$1 rounds=$2
    make_files "$size" "$rounds"
    total=$((size * rounds * CLIENTS))
    up=$(upload "$size" "$rounds")
    if [ "$size" = 25000000 ]; then PEAK_25=$(peak); fi
    down=$(download "$size")
    cin=$(copy_in "$size" "$rounds")
    cout=$(copy_out "$size")
    up_rate=$(rate $total "$up")
    in_rate=$(rate $total "$cin")
    down_rate=$(rate $total "$down")
    out_rate=$(rate $total "$cout")
    echo "$size $CLIENTS $((rounds * CLIENTS)) $up_rate $in_rate $(echo "scale=2; $up_rate / $in_rate" | bc -l)" \
         "$down_rate $out_rate $(echo "scale=2; $down_rate / $out_rate" | bc -l)"
    rm -f "$WORK/$size"/*.bin "$WORK/$size"/*.pgcopy
done
echo "peak_rss_mb_during_8x25MB_uploads=$PEAK_25 rss_now_mb=$(rss)"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $YARD WITH (FORCE)"

# Sourced by the benchmarks that start the release server: with DB and PORT set, sets PG (unless
# given) and BASE, exports the server's environment (`admin`'s password is bench-password) and
# builds the release server unless BIN names a build to measure.
PG=${PG:-postgres://postgres@127.0.0.1:5432}
BASE=http://127.0.0.1:$PORT
export DATABASE_URL=$PG/$DB BIND_ADDR=127.0.0.1:$PORT ADMIN_PASSWORD=bench-password \
    JWT_SECRET=bench-secret-bench-secret-bench-secret RUST_LOG=warn
if [ -z "${BIN:-}" ]; then
    cargo build --release -q
    BIN=target/release/incident-desk
fi

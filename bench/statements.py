"""Turns the statements one request sent, as PostgreSQL's statement log shows them
(`log_statement = all`), into a pgbench script that sends the same statements with the same
values: what PostgreSQL alone does for that request, without the server.

Usage: statements.py DATABASE < log-excerpt > script.sql

Reads the `execute <name>: SQL` and `statement: SQL` lines of DATABASE with their
`parameters: $1 = '...'` details (values may span lines) and writes each statement of the
request's connection with its values inline. A drawn id
(`SELECT nextval($1)`) is drawn again by the script (`\\gset`), and the later values equal to it
name the new id, so a replayed create inserts a new row each time.
"""

import re
import sys

database = sys.argv[1]
prefix = re.compile(
    r"^\S+ \S+ \S+ \[(?P<pid>\d+)\] \S+@(?P<db>\S+) (?P<kind>LOG|DETAIL):  (?P<rest>.*)$", re.S
)
# Where a log entry starts; a value with a line break goes on in lines that start otherwise.
entry_start = re.compile(r"^\d{4}-\d\d-\d\d ")
statement = re.compile(r"^(?:execute [^:]+|statement): (?P<sql>.*)$", re.S)
parameter = re.compile(r"\$(\d+) = (NULL|'((?:[^']|'')*)')")
# pgbench takes `:name` in a command for one of its variables.
variable_like = re.compile(r":[A-Za-z_\u0080-\U0010ffff]")

# Whole log entries: a line that does not start one continues the one before (PostgreSQL
# writes a value's line breaks as they are, the rest of the value on the next line).
lines = []
for line in sys.stdin:
    line = line.rstrip("\n")
    if lines and not entry_start.match(line):
        lines[-1] += "\n" + line
    else:
        lines.append(line)

by_backend = {}  # pid: [[sql, {number: literal}]]
for line in lines:
    match = prefix.match(line)
    if not match or match["db"] != database:
        continue
    entries = by_backend.setdefault(match["pid"], [])
    if match["kind"] == "LOG":
        sql = statement.match(match["rest"])
        if sql:
            entries.append([sql["sql"], {}])
    elif entries and match["rest"].startswith("parameters: "):
        entries[-1][1] = {
            int(n): literal for n, literal, _ in parameter.findall(match["rest"])
        }

# The request's own statements: those of the connection that sent most of them, without the
# live stream's read of the events a write committed. That read is the server's background work,
# one for every open stream and in batches under load, and it may run on any pooled connection;
# replayed from a fixed position it would read ever more events.
background = re.compile(r"FROM outbox_events e WHERE \(e\.tx, e\.id\) >")
entries = [
    entry
    for entry in max(by_backend.values(), key=len, default=[])
    if not background.search(entry[0])
]

if not entries:
    sys.exit(f"no statements of database {database} in the log excerpt")

script = []
drawn = None
for sql, values in entries:
    if sql == "SELECT nextval($1)":
        script.append(f"SELECT nextval({values[1]}) AS drawn_id \\gset")
        drawn = None  # known once the next statement names it
        continue
    if drawn is None and script and script[-1].endswith("\\gset"):
        # The drawn id is the first value of the statement that uses it.
        drawn = values.get(1)

    def inline(found, values=values):
        literal = values[int(found.group(1))]
        if literal == drawn:
            return ":drawn_id"
        if variable_like.search(literal):
            sys.exit(f"a value pgbench would read as a variable: {literal[:80]}")
        return literal

    script.append(re.sub(r"\$(\d+)\b", inline, sql) + ";")

print("\n".join(script))

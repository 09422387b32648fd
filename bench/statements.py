"""Turns the statements one request sent, as PostgreSQL's statement log shows them
(`log_statement = all`), into a pgbench script that sends the same statements with the same
values: what PostgreSQL alone does for that request, without the server.

Usage: statements.py DATABASE < log-excerpt > script.sql

Reads the `execute <name>: SQL` and `statement: SQL` lines of DATABASE with their
`parameters: $1 = '...'` details and writes each statement with its values inline. A drawn id
(`SELECT nextval($1)`) is drawn again by the script (`\\gset`), and the later values equal to it
name the new id, so a replayed create inserts a new row each time.
"""

import re
import sys

database = sys.argv[1]
prefix = re.compile(r"^\S+ \S+ \S+ \[\d+\] \S+@(?P<db>\S+) (?P<kind>LOG|DETAIL):  (?P<rest>.*)$")
statement = re.compile(r"^(?:execute [^:]+|statement): (?P<sql>.*)$")
parameter = re.compile(r"\$(\d+) = (NULL|'((?:[^']|'')*)')")
# pgbench takes `:name` in a command for one of its variables.
variable_like = re.compile(r":[A-Za-z_\u0080-\U0010ffff]")

entries = []  # [sql, {number: literal}]
for line in sys.stdin:
    match = prefix.match(line.rstrip("\n"))
    if not match or match["db"] != database:
        continue
    if match["kind"] == "LOG":
        sql = statement.match(match["rest"])
        if sql:
            entries.append([sql["sql"], {}])
    elif entries and match["rest"].startswith("parameters: "):
        entries[-1][1] = {
            int(n): literal for n, literal, _ in parameter.findall(match["rest"])
        }

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

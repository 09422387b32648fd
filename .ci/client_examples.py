"""Every example in openapi/openapi.json is an instance of the schema it illustrates (JSON Schema
2020-12, as OpenAPI 3.1 uses): component examples, field examples, and the examples of request
and response bodies. Run by .ci/client; a generated client or Swagger UI would otherwise show
integrators shapes the server never sends or takes."""

import json
import sys

from jsonschema import Draft202012Validator

document = json.load(open(sys.argv[1]))


def validator(schema):
    # References are `#/components/...` of the whole document: validate inside it.
    rooted = {**schema, "components": document["components"]}
    return Draft202012Validator(rooted)


failures = []


def check(where, schema, example):
    errors = sorted(validator(schema).iter_errors(example), key=lambda e: e.path)
    for error in errors[:3]:
        failures.append(f"{where}: {error.message} at {list(error.absolute_path)}")


def walk_schema(where, schema):
    if not isinstance(schema, dict):
        return
    if "example" in schema:
        check(where, schema, schema["example"])
    for key, value in schema.get("properties", {}).items():
        walk_schema(f"{where}.{key}", value)
    for key in ("items",):
        if isinstance(schema.get(key), dict):
            walk_schema(f"{where}[]", schema[key])
    for key in ("allOf", "oneOf", "anyOf"):
        for i, branch in enumerate(schema.get(key, [])):
            walk_schema(f"{where}/{key}{i}", branch)


for name, schema in document["components"]["schemas"].items():
    walk_schema(name, schema)
for path, item in document["paths"].items():
    for method, operation in item.items():
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += [(status, r) for status, r in operation.get("responses", {}).items()]
        for label, body in bodies:
            for media, content in body.get("content", {}).items():
                if "json" not in media or "schema" not in content:
                    continue
                where = f"{method.upper()} {path} {label} {media}"
                if "example" in content:
                    check(where, content["schema"], content["example"])
                for key, example in content.get("examples", {}).items():
                    check(f"{where} ({key})", content["schema"], example.get("value"))

if failures:
    print("examples that do not fit their schema:")
    print("\n".join(failures))
    sys.exit(1)
print("every example fits its schema")

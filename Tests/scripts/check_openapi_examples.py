#!/usr/bin/env python3
"""Every example in openapi/openapi.yaml must be valid against its own schema.

openapi-spec-validator checks the document's structure but not its examples; an example that
drifted from its schema would teach clients the wrong shape. Needs jsonschema and pyyaml (both
come with openapi-spec-validator). Usage: check_openapi_examples.py openapi/openapi.yaml
"""
import sys

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def main(path):
    document = yaml.safe_load(open(path))
    registry = Registry().with_resource("urn:spec", Resource.from_contents(document, default_specification=DRAFT202012))

    def errors(reference, value):
        validator = jsonschema.Draft202012Validator({"$ref": "urn:spec#" + reference}, registry=registry,
                                                    format_checker=jsonschema.FormatChecker())
        return [error.message for error in validator.iter_errors(value)]

    failures = []
    for name, schema in document["components"]["schemas"].items():
        for index, example in enumerate(schema.get("examples", [])):
            failures += [f"schema {name} example {index}: {message}" for message in errors(f"/components/schemas/{name}", example)]
    for name, example in document["components"]["examples"].items():
        failures += [f"example {name}: {message}" for message in errors("/components/schemas/Job", example["value"])]
    checked = sum(len(schema.get("examples", [])) for schema in document["components"]["schemas"].values())
    for message in failures:
        print(message)
    if failures:
        sys.exit(f"{len(failures)} examples do not match their schemas")
    print(f"check_openapi_examples.py: {checked + len(document['components']['examples'])} examples match their schemas")


if __name__ == "__main__":
    main(sys.argv[1])

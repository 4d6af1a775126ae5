"""Shopify's Admin API schema for validating Chorus's documents: the stored 2025-01 introspection, extended
with the later fields Chorus uses (declared in admin_schema_newer.graphql)."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    build_client_schema,
    extend_schema,
    parse,
    validate_schema,
)
from graphql.execution.values import get_variable_values

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
INTROSPECTION = FIXTURES / "admin_schema_2025-01.json.gz"
NEWER_FIELDS = FIXTURES / "admin_schema_newer.graphql"

# Shopify's own schema breaks one of graphql-core's rules: some fields are deprecated on an object but not
# on the interface it implements (e.g. Customer.hasTimelineComment). Only that complaint is tolerated.
_TOLERATED = "is not deprecated, so implementation field"


@cache
def admin_schema() -> GraphQLSchema:
    with gzip.open(INTROSPECTION, "rt", encoding="utf-8") as file:
        introspection = json.load(file)
    result = introspection.get("data", introspection)  # stored with or without the "data" wrapper
    schema = build_client_schema(result, assume_valid=True)
    extended = extend_schema(schema, parse(NEWER_FIELDS.read_text()), assume_valid=True)
    problems = [error for error in schema_problems(extended) if _TOLERATED not in error.message]
    assert not problems, problems
    return extended


def schema_problems(schema: GraphQLSchema) -> list[GraphQLError]:
    """graphql-core's checks of the schema itself (skipped by `assume_valid`)."""
    kwargs = schema.to_kwargs()
    kwargs["assume_valid"] = False
    fresh = GraphQLSchema(**kwargs)
    return list(validate_schema(fresh))


def variable_problems(document: str, variables: dict[str, Any]) -> list[str]:
    """What Shopify would say about these variables for this document: undeclared, missing, mistyped."""
    [operation] = [node for node in parse(document).definitions if isinstance(node, OperationDefinitionNode)]
    definitions = operation.variable_definitions or ()
    declared = {definition.variable.name.value for definition in definitions}
    problems = [f"undeclared variable ${name}" for name in variables if name not in declared]
    coerced = get_variable_values(admin_schema(), definitions, variables)
    if isinstance(coerced, list):
        problems.extend(error.message for error in coerced)
    return problems

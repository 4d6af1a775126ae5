"""Every document Chorus sends is valid against Shopify's schema, and uses no deprecated field.

The schema is the stored 2025-01 introspection extended with the later fields Chorus relies on
(tests/fixtures/shopify/admin_schema_newer.graphql). A deprecated field is treated as an error: Shopify
removes deprecated fields in later versions, and Chorus targets a recent one.
"""

from __future__ import annotations

import pytest
from graphql import GraphQLError, NoDeprecatedCustomRule, parse, specified_rules, validate

from shopify_app.shopify.admin_queries import ALL_DOCUMENTS
from tests.shopify.schema import admin_schema, schema_problems

RULES = [*specified_rules, NoDeprecatedCustomRule]


def problems(document: str) -> list[GraphQLError]:
    return validate(admin_schema(), parse(document), RULES)


@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_document_is_valid_and_current(name: str) -> None:
    assert problems(ALL_DOCUMENTS[name]) == []


@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_document_is_named_as_listed(name: str) -> None:
    # The operation name shows in Shopify's logs; the listing's key says which one to look for.
    assert f" {name}(" in ALL_DOCUMENTS[name] or f" {name} {{" in ALL_DOCUMENTS[name]


def test_a_deprecated_field_fails() -> None:
    [error] = problems('query { customer(id: "gid://shopify/Customer/1") { email } }')
    assert error.message.startswith("The field Customer.email is deprecated.")


def test_the_deprecated_webhook_callback_url_fails() -> None:
    [error] = problems("query { webhookSubscriptions(first: 1) { nodes { callbackUrl } } }")
    assert error.message.startswith("The field WebhookSubscription.callbackUrl is deprecated.")


def test_an_unknown_field_fails() -> None:
    [error] = problems('query { customer(id: "gid://shopify/Customer/1") { favouriteColour } }')
    assert error.message == "Cannot query field 'favouriteColour' on type 'Customer'."


def test_a_field_newer_than_the_stored_schema_is_declared_not_assumed() -> None:
    # defaultEmailAddress exists because the extension declares it; an undeclared 2025-04 field does not.
    assert problems('query { customer(id: "1") { defaultEmailAddress { emailAddress } } }') == []
    assert problems('query { customer(id: "1") { defaultEmailAddress { marketingOptInSource } } }') != []


def test_the_extended_schema_is_sound() -> None:
    # Only Shopify's own quirk (deprecated implementations of undeprecated interface fields) is tolerated.
    messages = [error.message for error in schema_problems(admin_schema())]
    assert all("so implementation field" in message for message in messages), messages

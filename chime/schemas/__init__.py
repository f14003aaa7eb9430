"""One schema per resource (pydantic v2): validation, serialization, the admin forms and the OpenAPI
document are derived from these models."""

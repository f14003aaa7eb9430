"""CSRF protection for the admin's forms (the API authenticates with bearer tokens instead)."""
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

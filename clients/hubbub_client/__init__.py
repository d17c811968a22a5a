"""Python client SDK for Hubbub worlds."""

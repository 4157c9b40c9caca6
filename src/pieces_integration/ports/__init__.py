"""Ports: the Protocols the service layer depends on, one module per area.

The core imports these, never `adapters/`. Adapters implement them; fakes in tests do too.
"""

"""An AIWFE platform emulator serving docs/aiwfe-contract.yaml with state, and sending webhooks."""

from __future__ import annotations

from pieces_integration.emulators.aiwfe.server import AIWFEEmulator, running_aiwfe_emulator
from pieces_integration.emulators.aiwfe.state import AIWFEState

__all__ = ["AIWFEEmulator", "AIWFEState", "running_aiwfe_emulator"]

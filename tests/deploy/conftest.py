"""One wheel install per test session, shared by the wheel and local-cluster tests."""

from __future__ import annotations

import pytest

from tests.deploy.wheel_install import Installed, build_wheel, install


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")  # under the system temp dir, not the repo
    return install(build_wheel(base / "dist"), base / "venv")

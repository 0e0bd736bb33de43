import pytest

from excess.search.synthetic import toy_events


@pytest.fixture(scope="session")
def signal_events():
    """40k background + 300 signal events (W' 3500 -> 500 + 100 GeV)."""
    return toy_events(40_000, 300, random_state=7)


@pytest.fixture(scope="session")
def background_events():
    return toy_events(40_000, 0, random_state=8)


def pytest_collection_modifyitems(config, items):
    """Keep @pytest.mark.slow tests of this directory out of the default run (``-m slow`` runs them)."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords and "tests/search" in str(item.fspath):
            item.add_marker(skip)

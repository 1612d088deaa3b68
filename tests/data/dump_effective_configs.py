"""Write the fully resolved config of every TimeSformer config (and the tests' tiny config) as JSON.

Run before a change to the configs or the loader, keep the output as the fixture, and let
``tests/test_config_variants.py`` compare the resolved configs after the change:

    python tests/data/dump_effective_configs.py > tests/data/effective_configs.json
"""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import K400_CONFIG, TINY_OVERRIDES  # noqa: E402
from paddlevideo.config import get_config, to_plain  # noqa: E402

CONFIG_DIR = REPO / "configs" / "recognition" / "timesformer"


def main():
    configs = {path.name: to_plain(get_config(str(path), show=False)) for path in sorted(CONFIG_DIR.glob("*.yaml"))}
    configs["tiny"] = to_plain(get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False))
    json.dump(configs, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

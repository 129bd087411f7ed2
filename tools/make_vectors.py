#!/usr/bin/env python3
"""Generate the test vectors in spec/vectors/ (layout: spec/vectors/README.md).

One short generator per vector, grouped by family, lives in tools/vectors/. The output is
deterministic: data keys and IVs come from fixed seeds, and the results of randomised operations
(RSA-OAEP wraps, ECDSA and ML-DSA signatures) are recorded in spec/vectors/oaep-wraps.json and
spec/vectors/signatures.json and reused once checked.

    python tools/make_vectors.py            # write spec/vectors/{keys,v1} and the two records
    python tools/make_vectors.py --check    # regenerate in memory and fail if any byte differs
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import vectors
from vectors.kit import ROOT


def generate(kit: vectors.Kit) -> dict[str, bytes]:
    """Every output file, by its path under spec/vectors/."""
    files: dict[str, bytes] = {}
    for generator in vectors.GENERATORS:
        data, spec = generator.build(kit)
        assert f"v1/{generator.name}.json" not in files, f"two vectors named {generator.name}"
        files[f"v1/{generator.name}.envelope"] = data
        files[f"v1/{generator.name}.json"] = (json.dumps(spec, indent=2, ensure_ascii=False) + "\n").encode()
    for record in (kit.wraps, kit.signatures, kit.encaps):
        files[record.filename] = record.render()
    files.update(vectors.passphrase.KEY_FILES)  # shared Fernet keys and passphrases: fixed text
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed vectors differ from a regeneration")
    args = parser.parse_args()
    files = generate(vectors.Kit(create=not args.check))
    present = {f"v1/{p.name}": p for p in (ROOT / "v1").glob("*")} if (ROOT / "v1").exists() else {}
    present.update(
        {
            name: ROOT / name
            for name in ("oaep-wraps.json", "signatures.json", "mlkem-encaps.json")
            if (ROOT / name).exists()
        }
    )
    for pattern in ("*.fernet", "*.passphrase"):
        present.update({f"keys/{p.name}": p for p in (ROOT / "keys").glob(pattern)})
    count = len(vectors.GENERATORS)
    if args.check:
        changed = {name for name in files if name in present and present[name].read_bytes() != files[name]}
        differ = sorted(set(present) ^ set(files) | changed)
        for name in differ:
            print(f"differs: {name}", file=sys.stderr)
        print(f"{count} vectors, {len(differ)} files differ")
        return 1 if differ else 0
    (ROOT / "v1").mkdir(parents=True, exist_ok=True)
    for stale in set(present) - set(files):
        present[stale].unlink()
    for name, data in files.items():
        (ROOT / name).write_bytes(data)
    rules = Counter(json.loads(files[f"v1/{g.name}.json"]).get("rule", "success") for g in vectors.GENERATORS)
    order = sorted(rules, key=lambda rule: int(rule[1:]) if rule.startswith("R") else 0)
    print(f"wrote {count} vectors to {ROOT}: " + ", ".join(f"{rule} {rules[rule]}" for rule in order))
    return 0


if __name__ == "__main__":
    sys.exit(main())

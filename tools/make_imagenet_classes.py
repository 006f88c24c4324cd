"""Write src/shoulders/backbones/imagenet_classes.json from timm's ImageNet-1k synset tables.

Run once by a maintainer (needs a registry): `pip download --no-deps -d /tmp/w timm`, then
`python tools/make_imagenet_classes.py /tmp/w/timm-*.whl`. The output lists the 1000 classes in the
standard index order (sorted WordNet ids), each with its id and its WordNet lemmas.
"""

import json
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/shoulders/backbones/imagenet_classes.json"


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        synsets = archive.read("timm/data/_info/imagenet_synsets.txt").decode().split()
        lemmas = dict(
            line.split("\t", 1)
            for line in archive.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines()
            if "\t" in line
        )
    if len(synsets) != 1000 or synsets != sorted(synsets):
        raise SystemExit("expected the 1000 ImageNet-1k synsets in sorted order")
    classes = [{"wnid": wnid, "names": [n.strip() for n in lemmas[wnid].split(",")]} for wnid in synsets]
    OUT.write_text(json.dumps(classes, indent=0) + "\n")
    print(f"wrote {len(classes)} classes to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Write MIDI files the tokenizer was not tuned to, for round-trip checks.

Renders works from the corpus that ships with music21 (public-domain music:
Joplin's rag, Beethoven, Haydn and Mozart string quartets, Chopin, Schumann) to
Standard MIDI Files with music21's own writer, then you run

    host-trainer tokenize --roundtrip OUT_DIR

Usage: pip install music21 && python3 tools/make_unseen_midi.py OUT_DIR
The files are not committed: the encodings carry their own licences.
"""
import sys
from pathlib import Path

from music21 import corpus

WORKS = [
    "joplin/maple_leaf_rag.mxl",
    "beethoven/opus18no4.mxl",
    "beethoven/opus132.mxl",
    "haydn/opus74no1/movement1.mxl",
    "mozart/k458/movement1.mxl",
    "mozart/k80/movement1.mxl",
    "chopin/mazurka06-2.krn",
    "schumann_robert/dichterliebe_no2.xml",
    "schumann_robert/opus41no1/movement2.mxl",
]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "unseen-midi")
    out.mkdir(parents=True, exist_ok=True)
    for work in WORKS:
        name = work.replace("/", "_").rsplit(".", 1)[0] + ".mid"
        try:
            corpus.parse(work).write("midi", fp=str(out / name))
            print("wrote", out / name)
        except Exception as e:  # noqa: BLE001 - report and go on
            print("skipped", work, e, file=sys.stderr)


if __name__ == "__main__":
    main()

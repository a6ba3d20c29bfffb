"""Regenerate the bundled speech lines (16 kHz mono s16le WAVs + lines.json) with espeak-ng.

    .venv/bin/python assets/speech/generate.py

Each entry of lines.json: id, group (greeting / kiosk / conversation / quiz), speaker,
voice, text, file, duration (s), words [{text, start, end}] (s, for captions) and
phonemes [[espeak name, start s]] (the alignment tests use for lip closure checks).
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
from scipy import signal

from avatarkit.motion.training.espeak import synthesize

HERE = Path(__file__).resolve().parent
RATE = 16000
GUIDE = {"voice": "en-us+f3", "rate": 165, "pitch": 55, "pitch_range": 60}
HOST = {"voice": "en-gb-x-rp+m3", "rate": 170, "pitch": 45, "pitch_range": 70}
SPEAKERS = {
    "ava": {"voice": "en-us+f2", "rate": 170, "pitch": 60, "pitch_range": 55},
    "ben": {"voice": "en+m1", "rate": 160, "pitch": 40, "pitch_range": 50},
    "cleo": {"voice": "en-gb-scotland+f4", "rate": 165, "pitch": 55, "pitch_range": 60},
}

LINES = [
    (
        "greeting",
        "greeting",
        "guide",
        "Hello! I'm your AvatarKit guide. Ask me anything about this place, or just say hi.",
    ),
    (
        "kiosk_welcome",
        "kiosk",
        "guide",
        "Welcome to the museum. The main hall is straight ahead, past the big blue map.",
    ),
    (
        "kiosk_tickets",
        "kiosk",
        "guide",
        "Tickets are sold at the desk on your left. Members go in for free.",
    ),
    (
        "kiosk_hours",
        "kiosk",
        "guide",
        "We are open from nine in the morning until six in the evening, every day but Monday.",
    ),
    (
        "kiosk_cafe",
        "kiosk",
        "guide",
        "Hungry? The cafe on the first floor serves soup, sandwiches and fresh coffee.",
    ),
    (
        "kiosk_exhibit",
        "kiosk",
        "guide",
        "Our new exhibit shows old boats, maps and pictures from the harbour.",
    ),
    (
        "kiosk_help",
        "kiosk",
        "guide",
        "If you need help, please press the button below the screen, and someone will come.",
    ),
    (
        "kiosk_photo",
        "kiosk",
        "guide",
        "You may take photos, but please do not use the flash near the paintings.",
    ),
    (
        "kiosk_goodbye",
        "kiosk",
        "guide",
        "Thank you for visiting. Have a wonderful day, and come back soon!",
    ),
    (
        "conv_ava_1",
        "conversation",
        "ava",
        "Did you see the moon last night? It was huge and orange.",
    ),
    ("conv_ben_1", "conversation", "ben", "I missed it. I was busy fixing my bike in the garage."),
    (
        "conv_cleo_1",
        "conversation",
        "cleo",
        "Oh, I took a photo of it from the bridge. I'll show you.",
    ),
    (
        "conv_ava_2",
        "conversation",
        "ava",
        "Perfect. Maybe we can all go up the hill tonight and look again.",
    ),
    ("conv_ben_2", "conversation", "ben", "Good plan. I'll bring blankets and some hot chocolate."),
    (
        "quiz_intro",
        "quiz",
        "host",
        "Welcome to the quiz! Three questions, ten seconds each. Ready?",
    ),
    ("quiz_q1", "quiz", "host", "Question one. Which planet is known as the red planet?"),
    ("quiz_q2", "quiz", "host", "Question two. How many legs does a spider have?"),
    ("quiz_q3", "quiz", "host", "Question three. What is the largest ocean on Earth?"),
    ("quiz_correct", "quiz", "host", "Correct! Well done, that is one more point for you."),
    ("quiz_wrong", "quiz", "host", "Not quite. Better luck with the next one."),
    ("quiz_timeout", "quiz", "host", "Time is up! Let's move on."),
    (
        "quiz_final",
        "quiz",
        "host",
        "That's the end of the quiz. You scored brilliantly. Thanks for playing!",
    ),
]


def voice_of(speaker: str) -> dict:
    return GUIDE if speaker == "guide" else HOST if speaker == "host" else SPEAKERS[speaker]


def main() -> None:
    entries = []
    for line_id, group, speaker, text in LINES:
        voice = voice_of(speaker)
        utt = synthesize(text, **voice)
        g = np.gcd(RATE, utt.sample_rate)
        audio = signal.resample_poly(utt.audio.astype(np.float64), RATE // g, utt.sample_rate // g)
        audio = np.concatenate([audio, np.zeros(RATE // 10)])  # a breath of silence after
        pcm = np.clip(np.round(audio), -32768, 32767).astype("<i2")
        file = f"{line_id}.wav"
        with wave.open(str(HERE / file), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(pcm.tobytes())
        sr = utt.sample_rate
        entries.append(
            {
                "id": line_id,
                "group": group,
                "speaker": speaker,
                "voice": voice["voice"],
                "text": text,
                "file": file,
                "duration": round(len(pcm) / RATE, 3),
                "words": [
                    {"text": w.text, "start": round(w.start / sr, 3), "end": round(w.end / sr, 3)}
                    for w in utt.words
                    if w.text.strip()
                ],
                "phonemes": [[p.name, round(p.start / sr, 3)] for p in utt.phonemes],
            }
        )
    (HERE / "lines.json").write_text(
        json.dumps({"sample_rate": RATE, "lines": entries}, indent=1) + "\n"
    )
    print(f"wrote {len(entries)} lines to {HERE}")


if __name__ == "__main__":
    main()

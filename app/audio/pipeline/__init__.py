"""Audio pipeline: turn uploads into playout files and assemble broadcast masters.

Playout format: MP3 (LAME VBR ``-q:a 2``, i.e. "V2"), mono, 44.1 kHz, with the Xing/LAME
header that tells decoders the encoder delay and padding (gapless), no ID3 tags, bit-exact
muxing (the same PCM always gives the same bytes, which suits content-addressed storage).
We chose V2 over 128k CBR because this LAME build lowers the level of CBR output by
0.45-0.5 dB (measured), while V2 keeps it within 0.1 dB and is ~20 % faster to encode.

One module per job; each one's docstring holds the conventions and measurements that
belong to it:

* ``frames``: time arithmetic (44.1 kHz frames and milliseconds) and the PCM formats.
* ``ffmpeg``: ffmpeg, ffprobe and pydub plumbing: decode, encode, probe.
* ``measure``: loudness, true peak, loudness range and the silence test.
* ``limiter``: the one gain a file gets and the look-ahead true-peak limiter after it.
* ``gain``: encoding with a guarantee: the decoded MP3 on target, its true peak under the
  ceiling (verify and re-encode).
* ``ingest``: an upload becomes a normalised playout MP3, or is rejected.
* ``envelopes``: an item's envelopes, measured once and kept, joined into a programme's.
* ``programme``: a programme's items decoded in one stream and joined as they come.
* ``assembly``: a rundown's items become one master MP3 with a cue per item.
* ``listen``: the light copy people listen to (AAC in MP4), made from a playout file.

What callers use is re-exported here (``from app.audio import pipeline``). Names with a
leading underscore are shared between these modules only.
"""

from app.audio.pipeline.assembly import AssemblyResult, Cue, Item, assemble, planned_total_ms
from app.audio.pipeline.envelopes import EnvelopeCache, ItemEnvelopes, envelope_key, measure_item
from app.audio.pipeline.ffmpeg import ENCODE_ARGS, EXPORT_PARAMETERS, highpass_args
from app.audio.pipeline.frames import RATE, describe_ms, frames_to_ms, ms_to_frames
from app.audio.pipeline.gain import off_target, standard_key
from app.audio.pipeline.ingest import AudioRejected, IngestResult, ingest
from app.audio.pipeline.measure import (
    AudioStats,
    analyse_file,
    analyse_pcm,
    probe_duration_ms,
)

__all__ = [
    "ENCODE_ARGS",
    "EXPORT_PARAMETERS",
    "RATE",
    "AssemblyResult",
    "AudioRejected",
    "AudioStats",
    "Cue",
    "EnvelopeCache",
    "IngestResult",
    "Item",
    "ItemEnvelopes",
    "analyse_file",
    "analyse_pcm",
    "assemble",
    "describe_ms",
    "envelope_key",
    "frames_to_ms",
    "highpass_args",
    "ingest",
    "measure_item",
    "ms_to_frames",
    "off_target",
    "planned_total_ms",
    "probe_duration_ms",
    "standard_key",
]

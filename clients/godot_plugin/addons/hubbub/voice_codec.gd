class_name HubbubVoiceCodec
extends RefCounted
## Hubbub's WebSocket voice codecs: 16 kHz mono, 20 ms frames (320 samples). The same codecs as the
## server's world/voice_codec.py, byte for byte (tests/vectors/codec_vectors.json checks both).
##
##   "ulaw16k"   G.711 μ-law, 1 byte per sample: 320 bytes per frame = 128 kbit/s.
##   "adpcm16k"  IMA ADPCM, 4 bits per sample + 4-byte header (predictor int16 LE, step index u8, 0):
##               164 bytes per frame = 65.6 kbit/s. Every frame decodes on its own.
## A stereo frame (message field ch = 2, the mixed bed) is the left frame followed by the right frame.
##
## An instance is an encoder (ADPCM carries its predictor and step index from frame to frame, so use one
## instance per stream). Decoding is static. PCM is int16 held in PackedInt32Array.

const SAMPLE_RATE := 16000
const FRAME_SAMPLES := 320
const FRAME_MS := 20
const ULAW := "ulaw16k"
const ADPCM := "adpcm16k"
const ADPCM_HEADER_BYTES := 4

const _ULAW_BIAS := 0x84
const _ULAW_CLIP := 32635
const _STEPS: Array[int] = [
	7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66, 73, 80,
	88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408, 449, 494, 544,
	598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272, 2499, 2749,
	3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845, 8630, 9493, 10442, 11487, 12635,
	13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794, 32767,
]
const _INDEX_DELTA: Array[int] = [-1, -1, -1, -1, 2, 4, 6, 8, -1, -1, -1, -1, 2, 4, 6, 8]
const _MAX_INDEX := 88

static var _ulaw_table := PackedInt32Array()

var codec: String
var _predictor := 0
var _index := 0


func _init(p_codec: String = ADPCM) -> void:
	assert(is_known(p_codec), "unknown voice codec " + p_codec)
	codec = p_codec


static func is_known(name: String) -> bool:
	return name == ULAW or name == ADPCM


## Encoded size of one mono frame.
static func frame_bytes(name: String, samples: int = FRAME_SAMPLES) -> int:
	return samples if name == ULAW else ADPCM_HEADER_BYTES + (samples + 1) / 2


## Payload bit rate of a mono stream (the msgpack framing adds ~30 bytes per frame, 12 kbit/s).
static func bitrate(name: String) -> int:
	return frame_bytes(name) * 8 * 1000 / FRAME_MS


## Encodes one frame of int16 samples (any even length; the protocol uses FRAME_SAMPLES).
func encode(pcm: PackedInt32Array) -> PackedByteArray:
	if codec == ULAW:
		return ulaw_encode(pcm)
	return _adpcm_encode(pcm)


## Decodes one frame of `channels` (1 or 2). Returns int16 samples, stereo as the left frame then the
## right frame; an empty array if the payload is not exactly one frame of that codec.
static func decode(name: String, payload: PackedByteArray, channels: int = 1) -> PackedInt32Array:
	if not is_known(name) or channels < 1 or channels > 2:
		return PackedInt32Array()
	var size := frame_bytes(name)
	if payload.size() != size * channels:
		return PackedInt32Array()
	var out := PackedInt32Array()
	for ch in channels:
		var part := payload.slice(ch * size, (ch + 1) * size)
		var samples := ulaw_decode(part) if name == ULAW else adpcm_decode(part)
		if samples.is_empty():
			return PackedInt32Array()
		out.append_array(samples)
	return out


# ----------------------------------------------------------------------------------------- μ-law

static func ulaw_encode(pcm: PackedInt32Array) -> PackedByteArray:
	var out := PackedByteArray()
	out.resize(pcm.size())
	for i in pcm.size():
		var x := pcm[i]
		var sign := 0
		if x < 0:
			sign = 0x80
			x = -x
		var mag := mini(x, _ULAW_CLIP) + _ULAW_BIAS  # 132 .. 32767
		var exponent := 7
		var mask := 0x4000
		while exponent > 0 and (mag & mask) == 0:
			exponent -= 1
			mask >>= 1
		var mantissa := (mag >> (exponent + 3)) & 0x0f
		out[i] = ~(sign | (exponent << 4) | mantissa) & 0xff
	return out


static func ulaw_decode(data: PackedByteArray) -> PackedInt32Array:
	if _ulaw_table.is_empty():
		_ulaw_table.resize(256)
		for b in 256:
			var u := ~b & 0xff
			var t := (((u & 0x0f) << 3) + _ULAW_BIAS) << ((u >> 4) & 0x07)
			_ulaw_table[b] = (_ULAW_BIAS - t) if (u & 0x80) else (t - _ULAW_BIAS)
	var out := PackedInt32Array()
	out.resize(data.size())
	for i in data.size():
		out[i] = _ulaw_table[data[i]]
	return out


# ----------------------------------------------------------------------------------------- IMA ADPCM

func _adpcm_encode(pcm: PackedInt32Array) -> PackedByteArray:
	var n := pcm.size()
	var out := PackedByteArray()
	out.resize(ADPCM_HEADER_BYTES + (n + 1) / 2)
	out[0] = _predictor & 0xff  # int16 little-endian, written by hand: encode_s16 uses host order
	out[1] = (_predictor >> 8) & 0xff
	out[2] = _index
	out[3] = 0
	var predictor := _predictor
	var index := _index
	for i in n:
		var step: int = _STEPS[index]
		var diff := pcm[i] - predictor
		var code := 0
		if diff < 0:
			code = 8
			diff = -diff
		var vpdiff := step >> 3
		if diff >= step:
			code |= 4
			diff -= step
			vpdiff += step
		step >>= 1
		if diff >= step:
			code |= 2
			diff -= step
			vpdiff += step
		step >>= 1
		if diff >= step:
			code |= 1
			vpdiff += step
		predictor = clampi(predictor - vpdiff if code & 8 else predictor + vpdiff, -32768, 32767)
		index = clampi(index + _INDEX_DELTA[code], 0, _MAX_INDEX)
		var at := ADPCM_HEADER_BYTES + (i >> 1)
		if i & 1:
			out[at] |= code << 4
		else:
			out[at] = code
	_predictor = predictor
	_index = index
	return out


## Decodes one ADPCM frame (header + nibbles); empty if malformed.
static func adpcm_decode(data: PackedByteArray) -> PackedInt32Array:
	if data.size() < ADPCM_HEADER_BYTES or data[2] > _MAX_INDEX:
		return PackedInt32Array()
	var predictor := data[0] | (data[1] << 8)
	if predictor >= 0x8000:
		predictor -= 0x10000
	var index: int = data[2]
	var n := (data.size() - ADPCM_HEADER_BYTES) * 2
	var out := PackedInt32Array()
	out.resize(n)
	for i in n:
		var byte: int = data[ADPCM_HEADER_BYTES + (i >> 1)]
		var code := (byte >> 4) if i & 1 else (byte & 0x0f)
		var step: int = _STEPS[index]
		var vpdiff := step >> 3
		if code & 4:
			vpdiff += step
		if code & 2:
			vpdiff += step >> 1
		if code & 1:
			vpdiff += step >> 2
		predictor = clampi(predictor - vpdiff if code & 8 else predictor + vpdiff, -32768, 32767)
		index = clampi(index + _INDEX_DELTA[code], 0, _MAX_INDEX)
		out[i] = predictor
	return out


# ----------------------------------------------------------------------------------------- conversions

## Float samples in [-1, 1] -> int16 (round to nearest, clipped).
static func floats_to_int16(x: PackedFloat32Array) -> PackedInt32Array:
	var out := PackedInt32Array()
	out.resize(x.size())
	for i in x.size():
		out[i] = clampi(roundi(x[i] * 32767.0), -32768, 32767)
	return out


static func int16_to_floats(x: PackedInt32Array) -> PackedFloat32Array:
	var out := PackedFloat32Array()
	out.resize(x.size())
	for i in x.size():
		out[i] = x[i] / 32768.0
	return out


## RMS of int16 samples, normalised to full scale (a full-scale sine gives ~0.707).
static func rms(x: PackedInt32Array) -> float:
	if x.is_empty():
		return 0.0
	var acc := 0.0
	for v in x:
		acc += float(v) * float(v)
	return sqrt(acc / x.size()) / 32768.0

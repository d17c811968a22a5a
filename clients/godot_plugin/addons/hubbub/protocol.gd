class_name HubbubProtocol
extends RefCounted
## Hubbub wire protocol v1 (docs/protocol.md): message builders and the binary `poses` batch decoder.
## A message is a Dictionary with a type key "t"; frames are msgpack (binary) or JSON (text).

const VERSION := 1

## Error codes of `error` messages and WebSocket close codes (mirrors world/protocol.py).
enum ErrorCode {
	BAD_FRAME = 100, UNKNOWN_TYPE = 101, INVALID_FIELD = 102, UNSUPPORTED_VERSION = 103,
	FRAME_TOO_LARGE = 104, RATE_LIMITED = 105, NOT_JOINED = 110, ALREADY_JOINED = 111,
	JOIN_TIMEOUT = 112, INVALID_TOKEN = 120, TOKEN_EXPIRED = 121, TOKEN_NOT_YET_VALID = 122,
	UNKNOWN_WORLD = 123, PERMISSION_DENIED = 124, WORLD_FULL = 130, SERVER_FULL = 131,
	RESUME_FAILED = 132, POSE_INVALID = 140, TRANSPORT_MISMATCH = 150, MEDIA_FAILED = 151,
	NOT_FOUND = 160, INTERNAL = 199,
}
enum CloseCode {
	NORMAL = 1000, GOING_AWAY = 1001, MESSAGE_TOO_BIG = 1009, INTERNAL_ERROR = 1011,
	AUTH_FAILED = 4001, JOIN_TIMEOUT = 4002, FLOOD = 4003, KICKED = 4004, REPLACED = 4005,
	WORLD_FULL = 4006, SERVER_FULL = 4007, SLOW_CONSUMER = 4008,
}

## Close codes after which reconnecting would only repeat the failure (or fight another session).
const FINAL_CLOSE_CODES: Array[int] = [
	CloseCode.NORMAL, CloseCode.AUTH_FAILED, CloseCode.KICKED, CloseCode.REPLACED,
]

## Fields that are bytes in msgpack and base64 strings in JSON text frames.
const BYTES_FIELDS := {"data": ["payload"], "voice": ["pcm"], "poses": ["ids", "pos", "rot"]}

const POS_SCALE := 1000.0  # poses.pos is int32 millimetres
const ROT_SCALE := 32767.0  # poses.rot is int16 q·32767


static func join(token: String, transport: String, resume: String = "") -> Dictionary:
	var msg := {"t": "join", "v": VERSION, "token": token, "transport": transport}
	if resume != "":
		msg["resume"] = resume
	return msg


static func pose(p: Vector3, q: Quaternion, seq: int) -> Dictionary:
	return {"t": "pose", "p": [p.x, p.y, p.z], "q": [q.x, q.y, q.z, q.w], "seq": seq & 0xffffffff}


static func data(topic: String, payload: PackedByteArray, reliable: bool = true,
		to: PackedInt64Array = PackedInt64Array()) -> Dictionary:
	var msg := {"t": "data", "topic": topic, "payload": payload, "reliable": reliable}
	if not to.is_empty():
		msg["to"] = Array(to)
	return msg


static func voice(codec: String, seq: int, pcm: PackedByteArray) -> Dictionary:
	return {"t": "voice", "codec": codec, "seq": seq & 0xffffffff, "pcm": pcm}


static func mute(audio: bool) -> Dictionary:
	return {"t": "mute", "audio": audio}


static func ping(id: int) -> Dictionary:
	return {"t": "ping", "id": id}


static func leave() -> Dictionary:
	return {"t": "leave"}


## Decodes one WebSocket / data-channel frame. Returns {"msg": Dictionary, "error": String}.
static func decode_frame(frame: PackedByteArray, is_text: bool) -> Dictionary:
	var value: Variant
	if is_text:
		var json := JSON.new()
		if json.parse(frame.get_string_from_utf8()) != OK:
			return {"msg": {}, "error": "malformed JSON: " + json.get_error_message()}
		value = json.data
	else:
		var res := HubbubMsgPack.decode(frame)
		if res["error"] != "":
			return {"msg": {}, "error": "malformed msgpack: " + res["error"]}
		value = res["value"]
	if typeof(value) != TYPE_DICTIONARY or typeof(value.get("t")) != TYPE_STRING:
		return {"msg": {}, "error": "a frame must hold one map with a string 't'"}
	var msg: Dictionary = value
	if is_text:
		for field: String in BYTES_FIELDS.get(msg["t"], []):
			if typeof(msg.get(field)) == TYPE_STRING:
				msg[field] = Marshalls.base64_to_raw(msg[field])
		_ints_from_json(msg)
	return {"msg": msg, "error": ""}


## JSON numbers arrive as floats; integral ids/codes/seq are ints in the msgpack form, so normalise.
static func _ints_from_json(msg: Dictionary) -> void:
	for key: String in ["participant_id", "code", "seq", "tick", "id", "from", "v", "ch"]:
		if typeof(msg.get(key)) == TYPE_FLOAT:
			msg[key] = int(msg[key])
	for key: String in ["ids"]:
		if typeof(msg.get(key)) == TYPE_ARRAY:
			msg[key] = msg[key].map(func(x: Variant) -> Variant: return int(x) if typeof(x) == TYPE_FLOAT else x)
	if typeof(msg.get("participants")) == TYPE_ARRAY:
		for p: Variant in msg["participants"]:
			if typeof(p) == TYPE_DICTIONARY and typeof(p.get("id")) == TYPE_FLOAT:
				p["id"] = int(p["id"])


## Decodes a `poses` batch: ids uint32 LE ×n, pos int32 LE ×3n (mm), rot int16 LE ×4n (q·32767).
## Returns {"ids": PackedInt64Array, "positions": PackedVector3Array, "rotations": Array[Quaternion],
## "tick": int, "error": String}.
static func decode_poses(msg: Dictionary) -> Dictionary:
	var out := {"ids": PackedInt64Array(), "positions": PackedVector3Array(),
			"rotations": [] as Array[Quaternion], "tick": int(msg.get("tick", 0)), "error": ""}
	var ids_raw: Variant = msg.get("ids")
	var pos_raw: Variant = msg.get("pos")
	var rot_raw: Variant = msg.get("rot")
	if typeof(ids_raw) != TYPE_PACKED_BYTE_ARRAY or typeof(pos_raw) != TYPE_PACKED_BYTE_ARRAY \
			or typeof(rot_raw) != TYPE_PACKED_BYTE_ARRAY:
		out["error"] = "poses: ids/pos/rot must be bytes"
		return out
	var n: int = ids_raw.size() / 4
	if ids_raw.size() != 4 * n or pos_raw.size() != 12 * n or rot_raw.size() != 8 * n:
		out["error"] = "poses: ids/pos/rot lengths disagree"
		return out
	var ids := StreamPeerBuffer.new()
	ids.data_array = ids_raw  # StreamPeerBuffer defaults to little-endian, the poses byte order
	var pos := StreamPeerBuffer.new()
	pos.data_array = pos_raw
	var rot := StreamPeerBuffer.new()
	rot.data_array = rot_raw
	var out_ids: PackedInt64Array = out["ids"]
	var out_pos: PackedVector3Array = out["positions"]
	var out_rot: Array[Quaternion] = out["rotations"]
	out_ids.resize(n)
	out_pos.resize(n)
	out_rot.resize(n)
	for i in n:
		out_ids[i] = ids.get_u32()
		var x := pos.get_32() / POS_SCALE
		var y := pos.get_32() / POS_SCALE
		var z := pos.get_32() / POS_SCALE
		out_pos[i] = Vector3(x, y, z)
		var qx := rot.get_16() / ROT_SCALE
		var qy := rot.get_16() / ROT_SCALE
		var qz := rot.get_16() / ROT_SCALE
		var qw := rot.get_16() / ROT_SCALE
		var q := Quaternion(qx, qy, qz, qw)
		out_rot[i] = q.normalized() if q.length_squared() > 0.0 else Quaternion.IDENTITY
	out["ids"] = out_ids  # packed arrays are values: store the filled copies back
	out["positions"] = out_pos
	return out


## [x, y, z] from a message field, or `fallback` if malformed.
static func vec3(v: Variant, fallback: Vector3 = Vector3.ZERO) -> Vector3:
	if typeof(v) == TYPE_ARRAY and v.size() == 3:
		return Vector3(float(v[0]), float(v[1]), float(v[2]))
	return fallback


## [x, y, z, w] from a message field (normalised), or `fallback` if malformed.
static func quat(v: Variant, fallback: Quaternion = Quaternion.IDENTITY) -> Quaternion:
	if typeof(v) == TYPE_ARRAY and v.size() == 4:
		var q := Quaternion(float(v[0]), float(v[1]), float(v[2]), float(v[3]))
		if q.length_squared() > 0.0:
			return q.normalized()
	return fallback

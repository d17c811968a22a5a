class_name HubbubMsgPack
extends RefCounted
## MessagePack encode/decode for the subset Hubbub's protocol uses: nil, bool, int, float, str, bin,
## array, map. Byte-compatible with Python's `msgpack.packb(value, use_bin_type=True)` (the server's
## encoder): smallest int format, floats as float64, strings as str, PackedByteArray as bin.
##
## Encoding also accepts StringName (as str), Vector3 / Quaternion (as arrays of 3 / 4 floats) and
## packed numeric arrays (as arrays). Decoding gives null, bool, int, float, String, PackedByteArray,
## Array and Dictionary. Wire numbers are big-endian (StreamPeerBuffer with big_endian = true).

const MAX_DEPTH := 64


## Encodes `value`; returns an empty PackedByteArray (and pushes an error) for unsupported types.
static func encode(value: Variant) -> PackedByteArray:
	var buf := StreamPeerBuffer.new()
	buf.big_endian = true
	var err := _write(buf, value, 0)
	if err != "":
		push_error("HubbubMsgPack.encode: " + err)
		return PackedByteArray()
	return buf.data_array


## Decodes one msgpack value that must span all of `data`.
## Returns {"value": Variant, "error": String}; error is "" on success.
static func decode(data: PackedByteArray) -> Dictionary:
	var reader := _Reader.new(data)
	var value: Variant = reader.read(0)
	if reader.error == "" and reader.buf.get_available_bytes() > 0:
		reader.error = "%d trailing bytes" % reader.buf.get_available_bytes()
	if reader.error != "":
		return {"value": null, "error": reader.error}
	return {"value": value, "error": ""}


static func _write(buf: StreamPeerBuffer, value: Variant, depth: int) -> String:
	if depth > MAX_DEPTH:
		return "nesting deeper than %d" % MAX_DEPTH
	match typeof(value):
		TYPE_NIL:
			buf.put_u8(0xc0)
		TYPE_BOOL:
			buf.put_u8(0xc3 if value else 0xc2)
		TYPE_INT:
			_write_int(buf, value)
		TYPE_FLOAT:
			buf.put_u8(0xcb)
			buf.put_double(value)
		TYPE_STRING, TYPE_STRING_NAME:
			var raw := String(value).to_utf8_buffer()
			_write_header(buf, raw.size(), 0xa0, 32, 0xd9, 0xda, 0xdb)
			buf.put_data(raw)
		TYPE_PACKED_BYTE_ARRAY:
			var bytes: PackedByteArray = value
			_write_header(buf, bytes.size(), -1, 0, 0xc4, 0xc5, 0xc6)
			buf.put_data(bytes)
		TYPE_ARRAY, TYPE_PACKED_INT32_ARRAY, TYPE_PACKED_INT64_ARRAY, TYPE_PACKED_FLOAT32_ARRAY, \
		TYPE_PACKED_FLOAT64_ARRAY, TYPE_PACKED_STRING_ARRAY:
			_write_header(buf, value.size(), 0x90, 16, -1, 0xdc, 0xdd)
			for item: Variant in value:
				var err := _write(buf, item, depth + 1)
				if err != "":
					return err
		TYPE_VECTOR3:
			var v: Vector3 = value
			return _write(buf, [v.x, v.y, v.z], depth)
		TYPE_QUATERNION:
			var q: Quaternion = value
			return _write(buf, [q.x, q.y, q.z, q.w], depth)
		TYPE_DICTIONARY:
			var d: Dictionary = value
			_write_header(buf, d.size(), 0x80, 16, -1, 0xde, 0xdf)
			for key: Variant in d:
				var err := _write(buf, key, depth + 1)
				if err == "":
					err = _write(buf, d[key], depth + 1)
				if err != "":
					return err
		_:
			return "cannot encode a value of type %s" % type_string(typeof(value))
	return ""


static func _write_int(buf: StreamPeerBuffer, v: int) -> void:
	# The same choices as msgpack-python: positive -> smallest unsigned, negative -> smallest signed.
	if v >= 0:
		if v < 0x80:
			buf.put_u8(v)
		elif v < 0x100:
			buf.put_u8(0xcc)
			buf.put_u8(v)
		elif v < 0x10000:
			buf.put_u8(0xcd)
			buf.put_u16(v)
		elif v < 0x100000000:
			buf.put_u8(0xce)
			buf.put_u32(v)
		else:
			buf.put_u8(0xcf)
			buf.put_u64(v)
	elif v >= -32:
		buf.put_8(v)
	elif v >= -128:
		buf.put_u8(0xd0)
		buf.put_8(v)
	elif v >= -32768:
		buf.put_u8(0xd1)
		buf.put_16(v)
	elif v >= -2147483648:
		buf.put_u8(0xd2)
		buf.put_32(v)
	else:
		buf.put_u8(0xd3)
		buf.put_64(v)


## Length header: fix form (fix_base | n) when n < fix_limit, else the 8/16/32-bit form (-1 = none).
static func _write_header(buf: StreamPeerBuffer, n: int, fix_base: int, fix_limit: int,
		code8: int, code16: int, code32: int) -> void:
	if fix_base >= 0 and n < fix_limit:
		buf.put_u8(fix_base | n)
	elif code8 >= 0 and n < 0x100:
		buf.put_u8(code8)
		buf.put_u8(n)
	elif n < 0x10000:
		buf.put_u8(code16)
		buf.put_u16(n)
	else:
		buf.put_u8(code32)
		buf.put_u32(n)


class _Reader:
	var buf := StreamPeerBuffer.new()
	var error := ""

	func _init(data: PackedByteArray) -> void:
		buf.big_endian = true
		buf.data_array = data

	func _need(n: int) -> bool:
		if error == "" and buf.get_available_bytes() < n:
			error = "truncated data at byte %d" % buf.get_position()
		return error == ""

	func read(depth: int) -> Variant:
		if depth > MAX_DEPTH:
			error = "nesting deeper than %d" % MAX_DEPTH
			return null
		if not _need(1):
			return null
		var c := buf.get_u8()
		if c < 0x80:
			return c
		if c >= 0xe0:
			return c - 0x100
		if c >= 0xa0 and c <= 0xbf:
			return _str(c & 0x1f)
		if c >= 0x90 and c <= 0x9f:
			return _array(c & 0x0f, depth)
		if c >= 0x80 and c <= 0x8f:
			return _map(c & 0x0f, depth)
		match c:
			0xc0:
				return null
			0xc2:
				return false
			0xc3:
				return true
			0xc4:
				return _bin(_len(1))
			0xc5:
				return _bin(_len(2))
			0xc6:
				return _bin(_len(4))
			0xca:
				return buf.get_float() if _need(4) else null
			0xcb:
				return buf.get_double() if _need(8) else null
			0xcc:
				return buf.get_u8() if _need(1) else null
			0xcd:
				return buf.get_u16() if _need(2) else null
			0xce:
				return buf.get_u32() if _need(4) else null
			0xcf:
				if not _need(8):
					return null
				var u := buf.get_u64()
				if u < 0:
					error = "uint64 beyond the int64 range"
				return u
			0xd0:
				return buf.get_8() if _need(1) else null
			0xd1:
				return buf.get_16() if _need(2) else null
			0xd2:
				return buf.get_32() if _need(4) else null
			0xd3:
				return buf.get_64() if _need(8) else null
			0xd9:
				return _str(_len(1))
			0xda:
				return _str(_len(2))
			0xdb:
				return _str(_len(4))
			0xdc:
				return _array(_len(2), depth)
			0xdd:
				return _array(_len(4), depth)
			0xde:
				return _map(_len(2), depth)
			0xdf:
				return _map(_len(4), depth)
		error = "unsupported msgpack type byte 0x%02x" % c
		return null

	func _len(width: int) -> int:
		if not _need(width):
			return -1
		match width:
			1:
				return buf.get_u8()
			2:
				return buf.get_u16()
		return buf.get_u32()

	func _bytes(n: int) -> PackedByteArray:
		if n < 0 or not _need(n):
			return PackedByteArray()
		var start := buf.get_position()
		buf.seek(start + n)
		return buf.data_array.slice(start, start + n)

	func _bin(n: int) -> Variant:
		var b := _bytes(n)
		return b if error == "" else null

	func _str(n: int) -> Variant:
		var b := _bytes(n)
		return b.get_string_from_utf8() if error == "" else null

	func _array(n: int, depth: int) -> Variant:
		# Every element takes at least one byte: reject impossible counts before allocating.
		if n < 0 or not _need(n):
			return null
		var out := []
		out.resize(n)
		for i in n:
			out[i] = read(depth + 1)
			if error != "":
				return null
		return out

	func _map(n: int, depth: int) -> Variant:
		if n < 0 or not _need(2 * n):
			return null
		var out := {}
		for i in n:
			var key: Variant = read(depth + 1)
			var value: Variant = read(depth + 1)
			if error != "":
				return null
			out[key] = value
		return out

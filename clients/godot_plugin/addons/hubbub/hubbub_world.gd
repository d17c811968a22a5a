@icon("res://addons/hubbub/icon.svg")
class_name HubbubWorld
extends Node
## A connection to one Hubbub world. Add it to a scene, point `local_avatar` at the node you move, and
## call connect_to_world(url, token). It then
## - sends the local avatar's pose `pose_rate_hz` times a second (and obeys the server's `corrected`),
## - spawns one `remote_avatar_scene` per participant the server lets you see (`enter` / `exit`) and
##   moves it smoothly between the server's pose batches,
## - captures the microphone, sends 20 ms voice frames, and plays the voices it receives on an
##   AudioStreamPlayer3D under each remote avatar (attenuated like the server's mix, see
##   HubbubAudioModel) and the server's mixed bed on a plain AudioStreamPlayer,
## - reconnects with exponential backoff (resuming the session) when the connection drops.
## The remote avatar scene may define `hubbub_setup(remote: HubbubRemote)`; it is called on spawn.

signal joined(participant_id: int, welcome: Dictionary)
signal left(reason: String)
signal participant_entered(participant_id: int, info: Dictionary)
signal participant_exited(participant_id: int)
## From the server's `speakers` list (which may include your own id).
signal speaking_changed(participant_id: int, speaking: bool, level_db: float)
signal data_received(from_id: int, topic: String, payload: PackedByteArray)
## Server `error` messages (code from HubbubProtocol.ErrorCode, ref = offending message type) and
## local failures (code -1).
signal error(code: int, message: String, ref: String)
## The server overrode the local avatar's pose (reason: "bounds", "speed", "teleport" or "admin");
## the avatar has already been moved when this fires.
signal corrected(position: Vector3, rotation: Quaternion, reason: String)
signal reconnecting(attempt: int, delay_s: float)

enum State { DISCONNECTED, CONNECTING, JOINED, RECONNECTING, LEAVING }
enum TransportMode { AUTO, WEBSOCKET, WEBRTC }

@export var local_avatar: Node3D
## Instantiated per remote participant (its root must be a Node3D). Empty: a capsule with a name tag.
@export var remote_avatar_scene: PackedScene
## Where remote avatars are added; empty: under this node.
@export var remote_parent: Node
@export_range(1.0, 60.0) var pose_rate_hz := 20.0
## Remote avatars are drawn this far in the past, between two received poses.
@export_range(0.0, 1.0) var interpolation_delay := 0.1
## AUTO: WebRTC data channels when a WebRTC implementation exists and voice is off, else WebSocket.
@export var transport_mode := TransportMode.AUTO
@export var auto_reconnect := true
@export var reconnect_min_delay := 0.5
@export var reconnect_max_delay := 15.0

@export_group("Voice")
@export var voice_enabled := true
@export_enum("adpcm16k", "ulaw16k") var voice_codec := "adpcm16k"
## false: capture whatever plays on `capture_bus` instead of the microphone (tests, bots, music).
@export var use_microphone := true
@export var capture_bus: StringName = &"HubbubMic"
@export var voice_bus: StringName = &"Master"
@export var push_to_talk := false
@export var push_to_talk_action: StringName = &"hubbub_push_to_talk"
## Frames quieter than this (dBFS), after 300 ms of hangover, are not sent.
@export var silence_gate_db := -60.0
## Put an AudioListener3D on the local avatar: you hear from where the server thinks your ears are.
@export var listener_on_avatar := true

var state := State.DISCONNECTED
var participant_id := -1
## The last welcome message, and its `world` map (bounds, tick_rate, audio, interest...).
var welcome := {}
var world_config := {}
## participant id -> HubbubRemote
var remotes := {}
var muted := false
## Push-to-talk pressed from code (the action also counts).
var talking := false
var last_rtt_ms := -1.0
## RMS (0..1) of the last frame of the server's mixed bed.
var bed_level := 0.0
var stats := {
	"poses_sent": 0, "poses_dropped": 0, "voice_sent": 0, "voice_dropped": 0, "voice_received": 0,
	"bad_frames": 0, "reconnects": 0,
}

var _transport: HubbubTransport
var _url := ""
var _token := ""
var _resume := ""
var _bye := {}
var _pose_seq := 0
var _pose_due := 0.0
var _last_pose_sent_at := -1e9
var _last_pose := Transform3D()
var _reconnect_attempt := 0
var _reconnect_at := 0.0
var _leave_deadline := 0.0
var _leave_closing := false
var _capture: HubbubVoiceCapture
var _encoder: HubbubVoiceCodec
var _voice_seq := 0
var _gate_open_frames := 0
var _bed_player: AudioStreamPlayer
var _bed_playback: AudioStreamGeneratorPlayback
var _bed_capacity := 0
var _pings := {}
var _ping_id := 0
var _ping_due := 0.0
var _speaking := {}


# ------------------------------------------------------------------------------------------ public API

func connect_to_world(url: String, token: String) -> void:
	_drop_connection()
	_url = url
	_token = token
	_resume = ""
	_reconnect_attempt = 0
	_open()


## Leaves cleanly: sends `leave`, waits (up to a second) for the server to close, then emits `left`.
func leave() -> void:
	match state:
		State.JOINED:
			_transport.send(HubbubProtocol.leave())
			state = State.LEAVING
			_leave_closing = false
			_leave_deadline = _now() + 1.0
		State.CONNECTING, State.RECONNECTING:
			_drop_connection()
			_finish("left")


func is_joined() -> bool:
	return state == State.JOINED


func get_remote(id: int) -> HubbubRemote:
	return remotes.get(id)


## Application data to everyone in range (or to `to`), on a topic. Needs the can_publish_data grant.
func send_data(topic: String, payload: PackedByteArray, reliable: bool = true,
		to: PackedInt64Array = PackedInt64Array()) -> bool:
	if state != State.JOINED:
		return false
	return _transport.send(HubbubProtocol.data(topic, payload, reliable, to), not reliable)


func set_muted(value: bool) -> void:
	muted = value
	if state == State.JOINED:
		_transport.send(HubbubProtocol.mute(value))


func set_talking(value: bool) -> void:
	talking = value


## Sends a ping now; last_rtt_ms is updated when the pong arrives. Returns the ping id.
func ping() -> int:
	_ping_id += 1
	if state == State.JOINED:
		_pings[_ping_id] = Time.get_ticks_usec()
		_transport.send(HubbubProtocol.ping(_ping_id))
	return _ping_id


## The local avatar's transform as last sent to the server.
func last_sent_pose() -> Transform3D:
	return _last_pose


## RMS (0..1 of full scale) of the last captured microphone frame; 0 before voice starts.
func get_mic_level() -> float:
	return _capture.input_level if _capture != null else 0.0


# ------------------------------------------------------------------------------------------ connection

func _make_transport() -> HubbubTransport:
	var rtc := HubbubWebRTCTransport.available()
	var want_rtc := transport_mode == TransportMode.WEBRTC or (transport_mode == TransportMode.AUTO and rtc and not voice_enabled)
	if want_rtc and not rtc:
		push_warning("Hubbub: no WebRTC implementation (webrtc-native extension); using the WebSocket")
	if want_rtc and rtc:
		return HubbubWebRTCTransport.new()
	return HubbubWebSocketTransport.new()


func _open() -> void:
	_bye = {}
	_transport = _make_transport()
	_transport.opened.connect(_on_opened)
	_transport.message_received.connect(_on_message)
	_transport.closed.connect(_on_closed)
	_transport.bad_frame.connect(_on_bad_frame)
	state = State.CONNECTING
	var err := _transport.open(_url)
	if err != OK:
		error.emit(-1, "cannot open %s: %s" % [_url, error_string(err)], "")
		_transport = null
		_schedule_reconnect()


func _on_opened() -> void:
	_transport.send(HubbubProtocol.join(_token, _transport.kind, _resume))


func _on_closed(code: int, reason: String) -> void:
	var was := state
	_transport = null
	_clear_session()
	if was == State.LEAVING or was == State.DISCONNECTED:
		_finish("left")
		return
	var bye_code := int(_bye.get("code", code))
	var why := "closed (%d%s)" % [code, ": " + reason if reason != "" else ""]
	if not _bye.is_empty():
		why = "bye (%d: %s)" % [bye_code, _bye.get("reason", "")]
	if code in HubbubProtocol.FINAL_CLOSE_CODES or bye_code in HubbubProtocol.FINAL_CLOSE_CODES \
			or not auto_reconnect:
		_finish(why)
		return
	_schedule_reconnect()


func _schedule_reconnect() -> void:
	if not auto_reconnect:
		_finish("connection failed")
		return
	var delay := minf(reconnect_max_delay, reconnect_min_delay * pow(2.0, _reconnect_attempt))
	delay *= randf_range(0.8, 1.2)  # jitter: a restarted server is not hit by every client at once
	_reconnect_attempt += 1
	stats["reconnects"] += 1
	_reconnect_at = _now() + delay
	state = State.RECONNECTING
	reconnecting.emit(_reconnect_attempt, delay)


func _finish(reason: String) -> void:
	state = State.DISCONNECTED
	participant_id = -1
	left.emit(reason)


func _drop_connection() -> void:
	if _transport != null:
		var t := _transport
		_transport = null
		t.closed.disconnect(_on_closed)
		t.close(HubbubProtocol.CloseCode.NORMAL, "")
	_clear_session()
	state = State.DISCONNECTED


func _clear_session() -> void:
	for id: int in remotes.keys():
		_despawn(id)
	_speaking.clear()
	_pings.clear()
	if _bed_player != null:
		_bed_player.queue_free()
		_bed_player = null
		_bed_playback = null


# ------------------------------------------------------------------------------------------ messages

func _on_bad_frame(message: String) -> void:
	stats["bad_frames"] += 1
	error.emit(-1, "undecodable frame from the server: " + message, "")


func _on_message(msg: Dictionary) -> void:
	match msg["t"]:
		"welcome":
			_on_welcome(msg)
		"enter":
			for p: Variant in msg.get("participants", []):
				if typeof(p) == TYPE_DICTIONARY:
					_on_enter(p)
		"exit":
			for id: Variant in msg.get("ids", []):
				if remotes.has(int(id)):
					_despawn(int(id))
		"poses":
			_on_poses(msg)
		"voice":
			_on_voice(msg)
		"speakers":
			_on_speakers(msg)
		"data":
			data_received.emit(int(msg.get("from", -1)), str(msg.get("topic", "")),
					msg.get("payload", PackedByteArray()) as PackedByteArray)
		"corrected":
			_on_corrected(msg)
		"error":
			error.emit(int(msg.get("code", 0)), str(msg.get("message", "")), str(msg.get("ref", "")))
		"pong":
			var sent: Variant = _pings.get(int(msg.get("id", -1)))
			if sent != null:
				last_rtt_ms = (Time.get_ticks_usec() - int(sent)) / 1000.0
				_pings.erase(int(msg.get("id", -1)))
		"bye":
			_bye = msg


func _on_welcome(msg: Dictionary) -> void:
	welcome = msg
	world_config = msg.get("world", {})
	participant_id = int(msg.get("participant_id", -1))
	_resume = str(msg.get("resume", ""))
	_reconnect_attempt = 0
	state = State.JOINED
	if local_avatar != null:
		var spawn: Dictionary = msg.get("spawn", {})
		if not msg.get("resumed", false) and spawn.has("p"):
			_place_local(HubbubProtocol.vec3(spawn["p"]), HubbubProtocol.quat(spawn.get("q")))
		if listener_on_avatar:
			_ensure_listener()
	_pose_due = 0.0
	_last_pose_sent_at = -1e9
	if muted:
		_transport.send(HubbubProtocol.mute(true))
	if voice_enabled:
		_start_voice()
	joined.emit(participant_id, msg)


func _on_enter(p: Dictionary) -> void:
	var id := int(p.get("id", -1))
	if id < 0 or id == participant_id:
		return
	var remote: HubbubRemote = remotes.get(id)
	if remote != null:
		remote.info = p
		return
	remote = HubbubRemote.new(p)
	remote.node = _instantiate_avatar()
	remote.node.name = "hubbub_%d" % id
	(remote_parent if remote_parent != null else self).add_child(remote.node)
	var pos := HubbubProtocol.vec3(p.get("p"))
	var rot := HubbubProtocol.quat(p.get("q"))
	remote.push_pose(_now(), pos, rot)
	remote.update_transform(_now())
	remote.attach_voice(voice_bus, world_config.get("audio", {}))
	remotes[id] = remote
	if remote.node.has_method("hubbub_setup"):
		remote.node.call("hubbub_setup", remote)
	participant_entered.emit(id, p)


func _instantiate_avatar() -> Node3D:
	if remote_avatar_scene != null:
		var inst := remote_avatar_scene.instantiate()
		if inst is Node3D:
			return inst
		push_error("Hubbub: remote_avatar_scene's root must be a Node3D")
		inst.free()
	var root := Node3D.new()
	var mesh := MeshInstance3D.new()
	var capsule := CapsuleMesh.new()
	capsule.radius = 0.3
	capsule.height = 1.8
	mesh.mesh = capsule
	mesh.position.y = 0.9
	root.add_child(mesh)
	return root


func _despawn(id: int) -> void:
	var remote: HubbubRemote = remotes.get(id)
	if remote == null:
		return
	remotes.erase(id)
	if _speaking.has(id):
		_speaking.erase(id)
		speaking_changed.emit(id, false, -127.0)
	if is_instance_valid(remote.node):
		remote.node.queue_free()
	participant_exited.emit(id)


func _on_poses(msg: Dictionary) -> void:
	var batch := HubbubProtocol.decode_poses(msg)
	if batch["error"] != "":
		_on_bad_frame(batch["error"])
		return
	var now := _now()
	var ids: PackedInt64Array = batch["ids"]
	var positions: PackedVector3Array = batch["positions"]
	var rotations: Array[Quaternion] = batch["rotations"]
	for i in ids.size():
		var remote: HubbubRemote = remotes.get(ids[i])
		if remote != null:
			remote.push_pose(now, positions[i], rotations[i])


func _on_speakers(msg: Dictionary) -> void:
	var ids: Array = msg.get("ids", [])
	var levels: Array = msg.get("levels", [])
	var now_speaking := {}
	for i in mini(ids.size(), levels.size()):
		now_speaking[int(ids[i])] = float(levels[i])
	for id: int in now_speaking:
		var remote: HubbubRemote = remotes.get(id)
		if remote != null:
			remote.speaking = true
			remote.speaking_level_db = now_speaking[id]
		if not _speaking.has(id):
			speaking_changed.emit(id, true, now_speaking[id])
	for id: int in _speaking:
		if not now_speaking.has(id):
			var remote: HubbubRemote = remotes.get(id)
			if remote != null:
				remote.speaking = false
				remote.speaking_level_db = -127.0
			speaking_changed.emit(id, false, -127.0)
	_speaking = now_speaking


func _on_voice(msg: Dictionary) -> void:
	var channels := int(msg.get("ch", 1))
	var pcm: Variant = msg.get("pcm")
	if typeof(pcm) != TYPE_PACKED_BYTE_ARRAY:
		_on_bad_frame("voice.pcm must be bytes")
		return
	var samples := HubbubVoiceCodec.decode(str(msg.get("codec", "")), pcm, channels)
	if samples.is_empty():
		_on_bad_frame("voice frame that does not decode (%s, %d bytes)" % [msg.get("codec"), pcm.size()])
		return
	stats["voice_received"] += 1
	var from: Variant = msg.get("from")
	if from == null:
		_play_bed(samples, channels)
		return
	var remote: HubbubRemote = remotes.get(int(from))
	if remote == null:
		return  # not (yet) entered: nowhere to play it
	if channels == 2:
		var n := HubbubVoiceCodec.FRAME_SAMPLES
		var mono := PackedInt32Array()
		mono.resize(n)
		for i in n:
			mono[i] = (samples[i] + samples[n + i]) / 2
		samples = mono
	remote.push_voice(samples)


func _play_bed(samples: PackedInt32Array, channels: int) -> void:
	bed_level = HubbubVoiceCodec.rms(samples)
	if _bed_player == null:
		_bed_player = AudioStreamPlayer.new()
		_bed_player.name = "HubbubBed"
		var gen := AudioStreamGenerator.new()
		gen.mix_rate = HubbubVoiceCodec.SAMPLE_RATE
		gen.buffer_length = 0.5
		_bed_player.stream = gen
		_bed_player.bus = voice_bus
		add_child(_bed_player)
		_bed_player.play()
		_bed_playback = _bed_player.get_stream_playback()
		_bed_capacity = _bed_playback.get_frames_available()
	var n := HubbubVoiceCodec.FRAME_SAMPLES
	var queued := _bed_capacity - _bed_playback.get_frames_available()
	if queued + n > HubbubRemote.MAX_VOICE_QUEUE_S * HubbubVoiceCodec.SAMPLE_RATE:
		return
	if queued == 0:
		var pad := PackedVector2Array()
		pad.resize(int(HubbubRemote.PREBUFFER_S * HubbubVoiceCodec.SAMPLE_RATE))
		_bed_playback.push_buffer(pad)
	var frames := PackedVector2Array()
	frames.resize(n)
	var right := n if channels == 2 else 0
	for i in n:
		frames[i] = Vector2(samples[i] / 32768.0, samples[right + i] / 32768.0)
	_bed_playback.push_buffer(frames)


func _on_corrected(msg: Dictionary) -> void:
	var p := HubbubProtocol.vec3(msg.get("p"))
	var q := HubbubProtocol.quat(msg.get("q"))
	if local_avatar != null:
		_place_local(p, q)
	_pose_due = 0.0  # confirm the corrected pose on the next frame
	_last_pose_sent_at = -1e9
	corrected.emit(p, q, str(msg.get("reason", "")))


func _place_local(p: Vector3, q: Quaternion) -> void:
	var scale := local_avatar.global_transform.basis.get_scale()
	local_avatar.global_transform = Transform3D(Basis(q).scaled(scale), p)
	if local_avatar is CharacterBody3D:
		(local_avatar as CharacterBody3D).velocity = Vector3.ZERO


func _ensure_listener() -> void:
	var listener := local_avatar.get_node_or_null(^"HubbubListener") as AudioListener3D
	if listener == null:
		listener = AudioListener3D.new()
		listener.name = "HubbubListener"
		local_avatar.add_child(listener)
	listener.make_current()


# ------------------------------------------------------------------------------------------ per frame

func _process(delta: float) -> void:
	if _transport != null:
		_transport.poll()
	var now := _now()
	match state:
		State.RECONNECTING:
			if now >= _reconnect_at:
				_open()
		State.LEAVING:
			# The server closes after `leave`; if it does not, close from here, and if even the
			# close handshake stalls, give up on it.
			if now >= _leave_deadline and _transport != null:
				if not _leave_closing:
					_leave_closing = true
					_leave_deadline = now + 1.0
					_transport.close(HubbubProtocol.CloseCode.NORMAL, "leave")
				else:
					_drop_connection()
					_finish("left")
		State.JOINED:
			_send_pose(delta, now)
			_pump_voice()
			_ping_due -= delta
			if _ping_due <= 0.0:
				_ping_due = 5.0  # keepalive and RTT
				ping()
	_update_remotes(now)


func _send_pose(delta: float, now: float) -> void:
	if local_avatar == null:
		return
	_pose_due -= delta
	if _pose_due > 0.0:
		return
	var interval := 1.0 / pose_rate_hz
	_pose_due = maxf(_pose_due + interval, 0.0)  # no burst after a hitch
	var xf := local_avatar.global_transform
	var moved := not xf.is_equal_approx(_last_pose)
	if not moved and now - _last_pose_sent_at < 1.0:
		return  # still: one pose a second keeps the server's view fresh
	var q := xf.basis.get_rotation_quaternion()
	_pose_seq = (_pose_seq + 1) & 0xffffffff
	if _transport.send(HubbubProtocol.pose(xf.origin, q, _pose_seq), true):
		stats["poses_sent"] += 1
		_last_pose = xf
		_last_pose_sent_at = now
	else:
		stats["poses_dropped"] += 1


func _start_voice() -> void:
	if _capture == null:
		_capture = HubbubVoiceCapture.new()
		_capture.name = "HubbubVoiceCapture"
		_capture.bus_name = capture_bus
		_capture.use_microphone = use_microphone
		add_child(_capture)
	else:
		_capture.clear()  # what was captured while disconnected is stale: do not send it in a burst
	if _encoder == null or _encoder.codec != voice_codec:
		_encoder = HubbubVoiceCodec.new(voice_codec)


func _pump_voice() -> void:
	if _capture == null:
		return
	var frames := _capture.read_frames()
	var ptt_ok := not push_to_talk or talking \
			or (InputMap.has_action(push_to_talk_action) and Input.is_action_pressed(push_to_talk_action))
	for frame in frames:
		var level_db := linear_to_db(maxf(HubbubVoiceCodec.rms(frame), 1e-7))
		_gate_open_frames = 15 if level_db > silence_gate_db else maxi(_gate_open_frames - 1, 0)
		if muted or not ptt_ok or _gate_open_frames == 0 or not voice_enabled:
			continue
		_voice_seq = (_voice_seq + 1) & 0xffffffff
		var msg := HubbubProtocol.voice(_encoder.codec, _voice_seq, _encoder.encode(frame))
		if _transport.send(msg, true):
			stats["voice_sent"] += 1
		else:
			stats["voice_dropped"] += 1


func _update_remotes(now: float) -> void:
	if remotes.is_empty():
		return
	var render_time := now - interpolation_delay
	var ears := local_avatar.global_position if local_avatar != null else Vector3.ZERO
	var audio: Dictionary = world_config.get("audio", {})
	for remote: HubbubRemote in remotes.values():
		if not is_instance_valid(remote.node):
			continue  # freed by the application; _despawn tidies up on exit
		remote.update_transform(render_time)
		if not remote.native_attenuation and remote.player != null:
			var g := HubbubAudioModel.gain(audio, ears.distance_to(remote.node.global_position))
			remote.player.volume_db = linear_to_db(maxf(g, 1e-6))


func _exit_tree() -> void:
	if _transport != null and state == State.JOINED:
		_transport.send(HubbubProtocol.leave())
		_transport.poll()
	_drop_connection()


func _now() -> float:
	return Time.get_ticks_usec() / 1e6

class_name HubbubRemote
extends RefCounted
## One other participant as this client sees it: its avatar node, the pose snapshots it is interpolated
## between, and the positional player its forwarded voice plays on.

## Snapshots kept per remote: enough for the interpolation delay at 60 Hz poses, and bounded.
const MAX_SNAPSHOTS := 16
## Voice queued beyond this is dropped: it bounds the playback latency a fast sender can build up.
const MAX_VOICE_QUEUE_S := 0.2
## Silence inserted when a talk spurt starts on an empty queue: absorbs network jitter.
const PREBUFFER_S := 0.04

var id := -1
var identity := ""
var display_name := ""
## The `enter` entry for this participant (id, identity, name, p, q, audio, video).
var info := {}
var node: Node3D
var player: AudioStreamPlayer3D
## true: Godot attenuates natively; false: HubbubWorld sets volume_db from the distance every frame.
var native_attenuation := true
## RMS (0..1 of full scale) of the last voice frame received from this participant, before any
## spatialisation: what the server forwarded.
var last_voice_level := 0.0
var voice_frames := 0
var voice_dropped := 0
var speaking := false
var speaking_level_db := -127.0

var _playback: AudioStreamGeneratorPlayback
var _capacity := 0
var _snapshots: Array = []  # [time_s: float, position: Vector3, rotation: Quaternion]


func _init(p_info: Dictionary) -> void:
	info = p_info
	id = int(p_info.get("id", -1))
	identity = str(p_info.get("identity", ""))
	display_name = str(p_info.get("name", ""))


## Creates the 16 kHz generator player under the avatar node (call once the node is in the tree).
func attach_voice(bus: StringName, audio_config: Dictionary) -> void:
	player = AudioStreamPlayer3D.new()
	player.name = "HubbubVoice"
	var gen := AudioStreamGenerator.new()
	gen.mix_rate = HubbubVoiceCodec.SAMPLE_RATE
	gen.buffer_length = 0.5
	player.stream = gen
	player.bus = bus
	native_attenuation = HubbubAudioModel.configure_player(player, audio_config)
	node.add_child(player)
	player.play()
	_playback = player.get_stream_playback()
	_capacity = _playback.get_frames_available()


## Queues one decoded 20 ms frame (int16 mono) for playback and records its level.
func push_voice(samples: PackedInt32Array) -> void:
	voice_frames += 1
	last_voice_level = HubbubVoiceCodec.rms(samples)
	if _playback == null:
		return
	var queued := _capacity - _playback.get_frames_available()
	if queued + samples.size() > MAX_VOICE_QUEUE_S * HubbubVoiceCodec.SAMPLE_RATE:
		voice_dropped += 1
		return
	if queued == 0:
		var pad := PackedVector2Array()
		pad.resize(int(PREBUFFER_S * HubbubVoiceCodec.SAMPLE_RATE))
		_playback.push_buffer(pad)
	var frames := PackedVector2Array()
	frames.resize(samples.size())
	for i in samples.size():
		var v := samples[i] / 32768.0
		frames[i] = Vector2(v, v)
	_playback.push_buffer(frames)


func push_pose(time_s: float, position: Vector3, rotation: Quaternion) -> void:
	_snapshots.append([time_s, position, rotation])
	if _snapshots.size() > MAX_SNAPSHOTS:
		_snapshots.pop_front()


## Places the avatar where it was at `render_time` (interpolating between the two snapshots around
## it; holding the newest one when render_time is past it: no extrapolation, no overshoot).
func update_transform(render_time: float) -> void:
	if _snapshots.is_empty() or node == null:
		return
	while _snapshots.size() >= 2 and _snapshots[1][0] <= render_time:
		_snapshots.pop_front()
	var a: Array = _snapshots[0]
	var p: Vector3 = a[1]
	var q: Quaternion = a[2]
	if _snapshots.size() >= 2 and render_time > a[0]:
		var b: Array = _snapshots[1]
		var w := clampf((render_time - a[0]) / maxf(b[0] - a[0], 1e-4), 0.0, 1.0)
		p = p.lerp(b[1], w)
		q = q.slerp(b[2], w)
	var scale := node.global_transform.basis.get_scale()
	node.global_transform = Transform3D(Basis(q).scaled(scale), p)


## The newest pose received (not the interpolated one).
func latest_position() -> Vector3:
	return _snapshots[-1][1] if not _snapshots.is_empty() else Vector3.ZERO

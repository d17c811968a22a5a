extends "res://tests/live_test.gd"
## Two HubbubWorld nodes (A and B) against a live `hubbub serve` (started by tests/godot/test_live.py).
## Args: url=ws://... a=<token> b=<token>
## A joins, walks (B sees the pose: accepted), jumps 60 m (corrected: speed), steps below the floor
## (corrected: bounds), sends data to B, pings, sends voice frames through its capture bus, and leaves.

var events: Array[String] = []
var errors: Array[String] = []
var corrections: Array = []


func make_world(tag: String, voice: bool) -> HubbubWorld:
	var avatar := Node3D.new()
	avatar.name = "Avatar" + tag
	root.add_child(avatar)
	var w := HubbubWorld.new()
	w.name = "World" + tag
	w.local_avatar = avatar
	w.voice_enabled = voice
	w.use_microphone = false
	w.capture_bus = &"Mic" + tag
	w.pose_rate_hz = 30.0
	w.auto_reconnect = false
	root.add_child(w)
	w.joined.connect(func(pid: int, _w: Dictionary) -> void: events.append("%s joined %d" % [tag, pid]))
	w.left.connect(func(reason: String) -> void: events.append("%s left %s" % [tag, reason]))
	w.participant_entered.connect(func(pid: int, _i: Dictionary) -> void: events.append("%s sees %d" % [tag, pid]))
	w.participant_exited.connect(func(pid: int) -> void: events.append("%s lost %d" % [tag, pid]))
	w.error.connect(func(code: int, msg: String, ref: String) -> void: errors.append("%s error %d %s (%s)" % [tag, code, msg, ref]))
	return w


func run() -> void:
	var a := make_world("A", true)
	var b := make_world("B", false)
	var data_got := []
	b.data_received.connect(func(from: int, topic: String, payload: PackedByteArray) -> void: data_got.append([from, topic, payload]))
	a.corrected.connect(func(p: Vector3, q: Quaternion, reason: String) -> void: corrections.append([p, q, reason]))

	a.connect_to_world(args["url"], args["a"])
	b.connect_to_world(args["url"], args["b"])
	t.ok(await wait_until(func() -> bool: return a.is_joined() and b.is_joined(), 10.0), "both joined")
	t.ok(a.participant_id >= 0 and b.participant_id >= 0 and a.participant_id != b.participant_id, "distinct participant ids")
	t.eq(str(a.world_config.get("name")), "plaza", "welcome carries the world")
	t.eq(float(a.world_config["audio"]["reference_distance"]), 1.5, "welcome carries world.audio")
	t.ok(a.welcome.get("resume", "") != "", "welcome has a resume token")
	var a_avatar := a.local_avatar
	t.info("A spawned at %s" % a_avatar.global_position)
	t.ok(await wait_until(func() -> bool: return b.get_remote(a.participant_id) != null and a.get_remote(b.participant_id) != null, 5.0), "each sees the other enter")
	var a_on_b := b.get_remote(a.participant_id)
	if a_on_b == null:
		t.finish(self)
		return
	t.eq(a_on_b.identity, "godot-a", "remote identity")
	t.ok(a_on_b.node != null and a_on_b.node.is_inside_tree(), "remote avatar spawned")
	t.ok(a_on_b.player != null and a_on_b.player.playing, "remote voice player attached and playing")

	# 1. a legal walk: 2 m along +X at 2 m/s; B must see A arrive (the pose was accepted)
	var start := a_avatar.global_position
	var t0 := Time.get_ticks_msec()
	while Time.get_ticks_msec() - t0 < 1000:
		a_avatar.global_position = start + Vector3(2.0 * (Time.get_ticks_msec() - t0) / 1000.0, 0, 0)
		await process_frame
	a_avatar.global_position = start + Vector3(2, 0, 0)
	a_avatar.rotation = Vector3(0, PI / 2, 0)
	var target := a_avatar.global_position
	var target_q := a_avatar.global_transform.basis.get_rotation_quaternion()
	var seen := func() -> bool:
		return a_on_b.node.global_position.distance_to(target) < 0.01 \
				and a_on_b.node.global_transform.basis.get_rotation_quaternion().angle_to(target_q) < 1e-3
	t.ok(await wait_until(seen, 3.0), "B sees A's walk and turn (int16/mm quantised): %s vs %s, %s vs %s" % [
			a_on_b.node.global_position, target, a_on_b.node.global_transform.basis.get_rotation_quaternion(), target_q])
	t.eq(corrections.size(), 0, "no correction for a legal walk")
	t.ok(a.stats["poses_sent"] > 10, "poses sent: %d" % a.stats["poses_sent"])

	# 2. a 60 m jump: the speed limit clamps it and the server says so
	var before := a_avatar.global_position
	a_avatar.global_position = before + Vector3(60, 0, 0)
	t.ok(await wait_until(func() -> bool: return corrections.size() > 0, 3.0), "jump corrected")
	if corrections.size() > 0:
		var c: Array = corrections[0]
		t.eq(c[2], "speed", "correction reason")
		t.ok(a_avatar.global_position.is_equal_approx(c[0]), "local avatar moved to the corrected pose")
		var step := before.distance_to(c[0])
		t.ok(step < 20.0, "corrected pose is near the old one (%.2f m)" % step)
		t.info("jump of 60 m corrected to a step of %.2f m" % step)
		var corrected_p: Vector3 = c[0]
		t.ok(await wait_until(func() -> bool: return a_on_b.node.global_position.distance_to(corrected_p) < 0.05, 3.0), "B sees A at the corrected pose")
	corrections.clear()

	# 3. below the floor (bounds min y = -10): stop sending for 2.5 s so speed allows it, then step down
	a.local_avatar = null
	await wait(2.5)
	a_avatar.global_position = a_avatar.global_position + Vector3(0, -11, 0)
	a.local_avatar = a_avatar
	t.ok(await wait_until(func() -> bool: return corrections.size() > 0, 3.0), "out-of-bounds pose corrected")
	if corrections.size() > 0:
		var c: Array = corrections[0]
		t.eq(c[2], "bounds", "correction reason")
		t.near(c[0].y, -10.0, 1e-3, "clamped to the floor")
		t.near(a_avatar.global_position.y, -10.0, 1e-3, "local avatar on the floor")

	# 4. data A -> B, and a ping
	t.ok(a.send_data("chat", "hello from godot".to_utf8_buffer()), "data sent")
	t.ok(await wait_until(func() -> bool: return not data_got.is_empty(), 3.0), "B received data")
	if not data_got.is_empty():
		t.eq(data_got[0][0], a.participant_id, "data from A")
		t.eq(data_got[0][1], "chat", "data topic")
		t.eq((data_got[0][2] as PackedByteArray).get_string_from_utf8(), "hello from godot", "data payload")
	a.ping()
	t.ok(await wait_until(func() -> bool: return a.last_rtt_ms > 0.0, 3.0), "pong received")
	t.info("rtt %.1f ms" % a.last_rtt_ms)

	# 5. voice: a tone on A's capture bus goes out as adpcm16k frames; the server must not object
	var src := AudioStreamPlayer.new()
	var gen := AudioStreamGenerator.new()
	gen.mix_rate = AudioServer.get_mix_rate()
	src.stream = gen
	src.bus = &"MicA"
	root.add_child(src)
	src.play()
	var pb: AudioStreamGeneratorPlayback = src.get_stream_playback()
	var phase := 0
	t0 = Time.get_ticks_msec()
	while Time.get_ticks_msec() - t0 < 1500:
		while pb.get_frames_available() > 0:
			pb.push_frame(Vector2.ONE * 0.3 * sin(TAU * 300.0 * phase / gen.mix_rate))
			phase += 1
		await process_frame
	t.ok(a.stats["voice_sent"] >= 40, "voice frames sent: %d" % a.stats["voice_sent"])
	t.eq(a.stats["voice_dropped"], 0, "no voice frame dropped")
	a.set_muted(true)
	var sent := int(a.stats["voice_sent"])
	await wait(0.5)
	t.eq(int(a.stats["voice_sent"]), sent, "muted: no more voice frames")

	# 6. A leaves cleanly; B sees A go
	var a_pid := a.participant_id
	a.leave()
	t.ok(await wait_until(func() -> bool: return a.state == HubbubWorld.State.DISCONNECTED, 4.0), "A disconnected after leave")
	t.ok(events.has("A left left"), "A's left signal: %s" % [events])
	t.ok(await wait_until(func() -> bool: return b.get_remote(a_pid) == null, 4.0), "B saw A exit")
	t.ok(events.has("B lost %d" % a_pid), "B's participant_exited")
	b.leave()
	t.ok(await wait_until(func() -> bool: return b.state == HubbubWorld.State.DISCONNECTED, 4.0), "B disconnected")
	t.eq(errors, [] as Array[String], "no errors")
	t.info("events: %s" % [events])
	t.info("A stats: %s" % [a.stats])
	t.finish(self)

extends "res://tests/live_test.gd"
## HubbubWorld against a scripted protocol server (tests/godot/test_scripted_server.py): the receive
## paths the live server cannot exercise yet (forwarded voice from a participant, the stereo mixed bed,
## speakers) plus robustness against undecodable frames. Args: url=...

var speaking: Array = []
var errors: Array = []
var exited: Array[int] = []


func run() -> void:
	var avatar := Node3D.new()
	root.add_child(avatar)
	var camera := Camera3D.new()  # Godot spatialises only with a camera in the viewport
	avatar.add_child(camera)
	var w := HubbubWorld.new()
	w.local_avatar = avatar
	w.use_microphone = false
	w.capture_bus = &"ScriptedMic"
	w.auto_reconnect = false
	root.add_child(w)
	w.speaking_changed.connect(func(pid: int, on: bool, db: float) -> void: speaking.append([pid, on, db]))
	w.error.connect(func(code: int, msg: String, _r: String) -> void: errors.append([code, msg]))
	w.participant_exited.connect(func(pid: int) -> void: exited.append(pid))
	var data_got := []
	w.data_received.connect(func(from: int, topic: String, payload: PackedByteArray) -> void: data_got.append([from, topic, payload]))
	w.connect_to_world(args["url"], "scripted-token")
	t.ok(await wait_until(func() -> bool: return w.is_joined(), 10.0), "joined the scripted server")
	t.eq(w.participant_id, 42, "participant id from welcome")
	t.ok(avatar.global_position.is_equal_approx(Vector3(2.5, 0, -1.5)), "placed at the welcome's spawn: %s" % avatar.global_position)
	t.ok(await wait_until(func() -> bool: return w.get_remote(7) != null, 5.0), "bot entered")
	var bot := w.get_remote(7)
	if bot == null:
		t.finish(self)
		return
	t.eq(bot.display_name, "Bot", "remote name")
	t.ok(bot.native_attenuation, "inverse_clamped maps to native attenuation")
	t.eq(bot.player.attenuation_model, AudioStreamPlayer3D.ATTENUATION_INVERSE_DISTANCE, "player attenuation model")
	t.eq(bot.player.unit_size, 1.5, "unit_size = reference_distance")
	t.ok(w.get_node_or_null(^"hubbub_7") != null, "avatar node added under the world")

	# our own voice: a 300 Hz tone on the capture bus (the server decodes it and checks)
	var src := AudioStreamPlayer.new()
	var gen := AudioStreamGenerator.new()
	gen.mix_rate = AudioServer.get_mix_rate()
	src.stream = gen
	src.bus = &"ScriptedMic"
	root.add_child(src)
	src.play()
	var pb: AudioStreamGeneratorPlayback = src.get_stream_playback()
	var phase := 0
	var feed := func() -> void:
		while pb.get_frames_available() > 0:
			pb.push_frame(Vector2.ONE * 0.3 * sin(TAU * 300.0 * phase / gen.mix_rate))
			phase += 1
	process_frame.connect(feed)  # keep the tone going until we leave
	var until_voice := func() -> bool:
		return bot.voice_frames >= 60 and w.stats["voice_sent"] >= 60
	t.ok(await wait_until(until_voice, 10.0), "voice both ways (received %d, sent %d)" % [bot.voice_frames, w.stats["voice_sent"]])
	t.near(bot.last_voice_level, 0.25 / sqrt(2.0), 0.01, "bot's forwarded voice level (adpcm16k)")
	t.near(w.bed_level, 0.1 / sqrt(2.0), 0.005, "mixed bed level (ulaw16k, stereo)")
	t.ok(bot.voice_dropped < 10, "few frames dropped by the playback queue bound: %d" % bot.voice_dropped)
	t.ok(w.get_node_or_null(^"HubbubBed") != null, "bed player created")
	# the bot walks along -Z; its avatar follows (interpolated)
	t.ok(await wait_until(func() -> bool: return bot.node.global_position.z < -3.0, 5.0), "bot avatar follows poses: %s" % bot.node.global_position)
	t.ok(await wait_until(func() -> bool: return speaking.size() >= 2, 5.0), "speaking on and off: %s" % [speaking])
	if speaking.size() >= 2:
		t.ok(speaking[0][0] == 7 and speaking[0][1] == true and is_equal_approx(speaking[0][2], -15.0), "speaking on: %s" % [speaking[0]])
		t.ok(speaking[1][0] == 7 and speaking[1][1] == false, "speaking off: %s" % [speaking[1]])
	t.ok(await wait_until(func() -> bool: return w.stats["bad_frames"] >= 3, 5.0), "bad frames counted: %d" % w.stats["bad_frames"])
	t.ok(w.is_joined(), "still joined after bad frames")
	t.ok(errors.any(func(e: Array) -> bool: return e[0] == 102), "server error message surfaced: %s" % [errors])
	t.ok(await wait_until(func() -> bool: return not data_got.is_empty(), 5.0), "data from a JSON text frame")
	if not data_got.is_empty():
		t.eq(data_got[0][0], 7, "JSON data: from is an int")
		t.eq(data_got[0][1], "json", "JSON data: topic")
		t.eq(data_got[0][2], PackedByteArray([0, 255, 104, 105]), "JSON data: base64 payload decoded to bytes")
	t.ok(await wait_until(func() -> bool: return exited.has(7), 5.0), "bot exited")
	t.eq(w.get_remote(7), null, "remote removed")
	print("INFO stats ", w.stats)
	w.leave()
	t.ok(await wait_until(func() -> bool: return w.state == HubbubWorld.State.DISCONNECTED, 4.0), "left")
	t.finish(self)

extends SceneTree
## The addon's audio path in real Godot (headless = the Dummy audio driver, which still mixes in real
## time): every addon script compiles, the resampler, the distance-model mapping, microphone-style
## capture through a bus, and received voice played on a remote's AudioStreamPlayer3D measured on the
## Master bus at several distances (the client-side half of "voice level falls with distance").

const Check := preload("res://tests/check.gd")
const ADDON := "res://addons/hubbub/"
var t: RefCounted


func _initialize() -> void:
	t = Check.new()
	run.call_deferred()


func run() -> void:
	test_scripts_compile()
	test_resampler()
	test_audio_model()
	await test_capture_path()
	await test_spatial_playback()
	t.finish(self)


func test_scripts_compile() -> void:
	for file in DirAccess.get_files_at(ADDON):
		if file.ends_with(".gd"):
			var script: GDScript = load(ADDON + file)
			t.ok(script != null and script.can_instantiate(), "script compiles: " + file)


func sine(freq: float, rate: float, n: int, amp: float, phase0: int = 0) -> PackedFloat32Array:
	var out := PackedFloat32Array()
	out.resize(n)
	for i in n:
		out[i] = amp * sin(TAU * freq * (i + phase0) / rate)
	return out


func rms(x: PackedFloat32Array, skip: int = 0) -> float:
	var acc := 0.0
	for i in range(skip, x.size()):
		acc += x[i] * x[i]
	return sqrt(acc / maxi(1, x.size() - skip))


func resample_all(rate: float, freq: float) -> PackedFloat32Array:
	var r := HubbubResampler.new(rate, 16000.0)
	var out := PackedFloat32Array()
	var block := int(rate / 50)
	for b in 50:  # one second in 20 ms blocks, as the capture delivers it
		out.append_array(r.process(sine(freq, rate, block, 0.5, b * block)))
	return out


func test_resampler() -> void:
	for rate: float in [44100.0, 48000.0]:
		var t0 := Time.get_ticks_usec()
		var tone := resample_all(rate, 1000.0)
		var us := Time.get_ticks_usec() - t0
		t.near(tone.size(), 16000, 2, "resampled length at %d Hz" % rate)
		t.near(rms(tone, 800), 0.5 / sqrt(2.0), 0.01, "1 kHz tone level kept at %d Hz" % rate)
		# zero crossings of the 1 kHz tone: 2000 per second
		var crossings := 0
		for i in range(1, tone.size()):
			if (tone[i - 1] < 0.0) != (tone[i] < 0.0):
				crossings += 1
		t.near(crossings, 2000, 4, "1 kHz stays 1 kHz at %d Hz" % rate)
		var alias := resample_all(rate, 12000.0)
		var rejection := linear_to_db(rms(alias, 800) / (0.5 / sqrt(2.0)))
		t.ok(rejection < -25.0, "12 kHz (would alias to 4 kHz) rejected at %d Hz: %.1f dB" % [rate, rejection])
		t.info("resampler %d->16000: %.1f ms CPU per second of audio, 12 kHz alias at %.1f dB" % [rate, us / 1000.0, rejection])


func test_audio_model() -> void:
	var p := AudioStreamPlayer3D.new()
	var cases := [
		[{"distance_model": "inverse_clamped", "reference_distance": 1.5, "rolloff": 1.0}, true, AudioStreamPlayer3D.ATTENUATION_INVERSE_DISTANCE],
		[{"distance_model": "inverse", "reference_distance": 1.0, "rolloff": 1.0}, true, AudioStreamPlayer3D.ATTENUATION_INVERSE_DISTANCE],
		[{"distance_model": "exponential", "reference_distance": 1.0, "rolloff": 2.0}, true, AudioStreamPlayer3D.ATTENUATION_INVERSE_SQUARE_DISTANCE],
		[{"distance_model": "exponential_clamped", "reference_distance": 2.0, "rolloff": log(10.0)}, true, AudioStreamPlayer3D.ATTENUATION_LOGARITHMIC],
		[{"distance_model": "inverse_clamped", "reference_distance": 1.0, "rolloff": 2.0}, false, AudioStreamPlayer3D.ATTENUATION_DISABLED],
		[{"distance_model": "linear_clamped", "reference_distance": 1.0, "rolloff": 1.0, "max_distance": 30.0}, false, AudioStreamPlayer3D.ATTENUATION_DISABLED],
	]
	for c: Array in cases:
		var native := HubbubAudioModel.configure_player(p, c[0])
		t.eq(native, c[1], "native mapping for %s" % c[0])
		t.eq(p.attenuation_model, c[2], "attenuation model for %s" % c[0])
		t.eq(p.unit_size, float(c[0]["reference_distance"]), "unit_size = reference_distance")
		t.eq(p.max_db, 0.0, "max_db 0")
		t.eq(p.max_distance, 0.0, "no Godot max_distance fade")
	p.free()
	var inv := {"distance_model": "inverse_clamped", "reference_distance": 1.0, "rolloff": 1.0, "max_distance": 30.0}
	for d: float in [0.5, 2.0, 4.0, 8.0, 60.0]:
		var expected := 1.0 if d < 1.0 else (1.0 / 30.0 if d > 30.0 else 1.0 / d)
		t.near(HubbubAudioModel.gain(inv, d), expected, 1e-9, "inverse_clamped gain at %s m" % d)
	var lin := {"distance_model": "linear_clamped", "reference_distance": 2.0, "rolloff": 1.0, "max_distance": 12.0}
	t.near(HubbubAudioModel.gain(lin, 7.0), 0.5, 1e-9, "linear_clamped halfway")
	t.near(HubbubAudioModel.gain(lin, 20.0), 0.0, 1e-9, "linear_clamped beyond max")
	var expo := {"distance_model": "exponential", "reference_distance": 1.0, "rolloff": 2.0}
	t.near(HubbubAudioModel.gain(expo, 4.0), 1.0 / 16.0, 1e-9, "exponential rolloff 2 at 4 m")
	var inv2 := {"distance_model": "inverse", "reference_distance": 1.0, "rolloff": 2.0}
	t.near(HubbubAudioModel.gain(inv2, 3.0), 1.0 / 5.0, 1e-9, "inverse rolloff 2 at 3 m")


## A generator on the capture bus stands in for the microphone: same bus, effect, resampler, framing.
func test_capture_path() -> void:
	var cap := HubbubVoiceCapture.new()
	cap.bus_name = &"TestMic"
	cap.use_microphone = false
	root.add_child(cap)
	var src := AudioStreamPlayer.new()
	var gen := AudioStreamGenerator.new()
	var rate := AudioServer.get_mix_rate()
	gen.mix_rate = rate
	src.stream = gen
	src.bus = &"TestMic"
	root.add_child(src)
	src.play()
	var pb: AudioStreamGeneratorPlayback = src.get_stream_playback()
	var phase := 0
	var frames: Array[PackedInt32Array] = []
	var t_end := Time.get_ticks_msec() + 1500
	while Time.get_ticks_msec() < t_end:
		var n := pb.get_frames_available()
		var tone := sine(440.0, rate, n, 0.5, phase)
		phase += n
		var buf := PackedVector2Array()
		buf.resize(n)
		for i in n:
			buf[i] = Vector2(tone[i], tone[i])
		pb.push_buffer(buf)
		frames.append_array(cap.read_frames())
		await process_frame
	t.ok(frames.size() >= 50, "capture delivered %d frames in 1.5 s" % frames.size())
	t.ok(AudioServer.is_bus_mute(AudioServer.get_bus_index(&"TestMic")), "capture bus is muted (no self-monitoring)")
	var all := PackedInt32Array()
	for f in frames.slice(10):  # skip the start-up
		t.eq(f.size(), HubbubVoiceCodec.FRAME_SAMPLES, "frame size") if f.size() != HubbubVoiceCodec.FRAME_SAMPLES else null
		all.append_array(f)
	t.near(HubbubVoiceCodec.rms(all), 0.5 / sqrt(2.0), 0.02, "captured 440 Hz level")
	var crossings := 0
	for i in range(1, all.size()):
		if (all[i - 1] < 0) != (all[i] < 0):
			crossings += 1
	var seconds := all.size() / 16000.0
	t.near(crossings / seconds, 880.0, 10.0, "captured tone is 440 Hz at 16 kHz")
	# and it survives the codec
	var enc := HubbubVoiceCodec.new("adpcm16k")
	var dec := HubbubVoiceCodec.decode("adpcm16k", enc.encode(frames[-1]))
	t.near(HubbubVoiceCodec.rms(dec), HubbubVoiceCodec.rms(frames[-1]), 0.02, "ADPCM keeps the level")
	t.info("capture: %d frames, level %.3f, mix rate %d" % [frames.size(), HubbubVoiceCodec.rms(all), rate])
	src.queue_free()
	cap.queue_free()


## Received voice frames on a remote's AudioStreamPlayer3D, measured after Godot's spatialisation.
func test_spatial_playback() -> void:
	var master_cap := AudioEffectCapture.new()
	master_cap.buffer_length = 1.0
	AudioServer.add_bus_effect(0, master_cap)
	var listener := AudioListener3D.new()
	var holder := Node3D.new()
	root.add_child(holder)
	# Godot spatialises only for viewports with a Camera3D; the AudioListener3D then takes over the
	# ears. The camera is put far away so that a level measured at the listener proves the listener won.
	var camera := Camera3D.new()
	holder.add_child(camera)
	camera.position = Vector3(0, 0, 100)
	camera.make_current()
	holder.add_child(listener)
	listener.make_current()
	var frame := HubbubVoiceCodec.floats_to_int16(sine(440.0, 16000.0, 320, 0.5))  # 50 periods: seamless
	var levels := {}
	var configs := {
		"inverse_clamped": {"distance_model": "inverse_clamped", "reference_distance": 1.0, "rolloff": 1.0, "max_distance": 30.0},
		"linear (manual)": {"distance_model": "linear_clamped", "reference_distance": 1.0, "rolloff": 1.0, "max_distance": 9.0},
	}
	for name: String in configs:
		var audio: Dictionary = configs[name]
		for d: float in [1.0, 2.0, 4.0, 8.0]:
			var remote := HubbubRemote.new({"id": 1, "identity": "r", "name": "R"})
			remote.node = Node3D.new()
			holder.add_child(remote.node)
			remote.node.position = Vector3(0, 0, -d)  # straight ahead of the listener
			remote.attach_voice(&"Master", audio)
			if not remote.native_attenuation:  # what HubbubWorld does each frame in manual mode
				remote.player.volume_db = linear_to_db(HubbubAudioModel.gain(audio, d))
			var t_end := Time.get_ticks_msec() + 700
			var measuring := false
			var acc := 0.0
			var count := 0
			while Time.get_ticks_msec() < t_end:
				while remote._capacity - remote._playback.get_frames_available() < 2400:
					remote.push_voice(frame)
				if not measuring and Time.get_ticks_msec() > t_end - 400:
					master_cap.clear_buffer()
					measuring = true
				elif measuring:
					var buf := master_cap.get_buffer(master_cap.get_frames_available())
					for v in buf:
						acc += v.x * v.x + v.y * v.y
					count += buf.size()
				await process_frame
			levels["%s@%s" % [name, d]] = sqrt(acc / maxi(count, 1) / 2.0)
			t.ok(count > 8000, "%s at %s m: measured %d frames" % [name, d, count])
			t.near(remote.last_voice_level, 0.5 / sqrt(2.0), 0.01, "last_voice_level is the received RMS")
			remote.node.queue_free()
			await process_frame
	for name: String in configs:
		var audio: Dictionary = configs[name]
		var l1: float = levels["%s@1.0" % name]
		t.ok(l1 > 0.05, "%s: audible at the reference distance (%.3f)" % [name, l1])
		for d: float in [2.0, 4.0, 8.0]:
			var ratio: float = levels["%s@%s" % [name, d]] / l1
			var expected := HubbubAudioModel.gain(audio, d) / HubbubAudioModel.gain(audio, 1.0)
			t.near(ratio, expected, 0.03 + 0.05 * expected, "%s: level at %s m relative to 1 m" % [name, d])
			t.info("%s: %s m -> %.4f (x%.3f, server gain x%.3f)" % [name, d, levels["%s@%s" % [name, d]], ratio, expected])
	AudioServer.remove_bus_effect(0, AudioServer.get_bus_effect_count(0) - 1)
	holder.queue_free()

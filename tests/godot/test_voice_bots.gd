extends "res://tests/live_test.gd"
## Phase 2: a Godot player among Python WebRTC bots on a live `hubbub serve examples/plaza.toml`
## (started with the bots by tests/godot/test_voice_bots.py).
## Args: url=ws://... token=<token> speaker=<pid> mover=<pid> sx=<x> sz=<z> (the speaking bot's spot)
## Checks: the bots' avatars appear and the walking one moves; walking up to the speaking bot, its voice
## arrives forwarded (per-remote frames and level); walking away past forward_radius, its forwarded
## frames stop and it is heard in the mixed bed instead, quieter than near.

var errors: Array[String] = []


## Walks the avatar in a straight line at `speed` m/s (the server corrects faster moves).
func walk(avatar: Node3D, target: Vector3, speed: float) -> void:
	var last := Time.get_ticks_msec()
	while avatar.global_position.distance_to(target) > 0.05:
		await process_frame
		var now := Time.get_ticks_msec()
		var step := speed * (now - last) / 1000.0
		last = now
		avatar.global_position = avatar.global_position.move_toward(target, step)


## Mean of `remote.last_voice_level` over the frames that arrive in `seconds`, and how many arrived.
func forwarded_level(remote: HubbubRemote, seconds: float) -> Array:
	var frames0 := remote.voice_frames
	var seen := frames0
	var levels: Array[float] = []
	var end := Time.get_ticks_msec() + int(seconds * 1000)
	while Time.get_ticks_msec() < end:
		await process_frame
		if remote.voice_frames != seen:
			seen = remote.voice_frames
			levels.append(remote.last_voice_level)
	var mean := 0.0
	for l in levels:
		mean += l
	return [mean / maxf(1.0, levels.size()), remote.voice_frames - frames0]


func bed_level(w: HubbubWorld, seconds: float) -> float:
	var peak := 0.0
	var end := Time.get_ticks_msec() + int(seconds * 1000)
	while Time.get_ticks_msec() < end:
		await process_frame
		peak = maxf(peak, w.bed_level)
	return peak


func run() -> void:
	var avatar := Node3D.new()
	avatar.name = "Me"
	root.add_child(avatar)
	var w := HubbubWorld.new()
	w.local_avatar = avatar
	w.voice_enabled = true
	w.use_microphone = false
	w.auto_reconnect = false
	root.add_child(w)
	w.error.connect(func(code: int, msg: String, ref: String) -> void: errors.append("error %d %s (%s)" % [code, msg, ref]))
	var speaker := int(args["speaker"])
	var mover := int(args["mover"])
	var spot := Vector3(float(args["sx"]), 0.0, float(args["sz"]))

	w.connect_to_world(args["url"], args["token"])
	t.ok(await wait_until(func() -> bool: return w.is_joined(), 15.0), "joined")
	# (a) the bots' avatars appear, and the walking bot's avatar moves
	t.ok(await wait_until(func() -> bool: return w.get_remote(speaker) != null and w.get_remote(mover) != null, 10.0), "bot avatars spawned")
	var walker := w.get_remote(mover)
	var talker := w.get_remote(speaker)
	if walker == null or talker == null:
		t.finish(self)
		return
	t.ok(walker.node != null and walker.node.is_inside_tree(), "remote avatar node in the scene")
	var p0 := walker.node.global_position
	t.ok(await wait_until(func() -> bool: return walker.node.global_position.distance_to(p0) > 1.0, 5.0), "walking bot's avatar moves")
	t.info("walker moved from %s to %s" % [p0, walker.node.global_position])
	t.ok(talker.node.global_position.distance_to(spot) < 0.5, "speaking bot's avatar stands where it is (%s)" % talker.node.global_position)

	# (b) near the speaking bot: its voice is forwarded to us
	await walk(avatar, spot + Vector3(0, 0, 2.0), 6.0)
	await wait(1.5)
	var near: Array = await forwarded_level(talker, 2.0)
	t.info("near (2 m): %d forwarded frames in 2 s, level %.4f, bed %.4f" % [near[1], near[0], w.bed_level])
	t.ok(near[1] >= 25, "speaking bot forwarded when near (%d frames in 2 s)" % near[1])
	t.ok(near[0] > 0.02, "forwarded voice is audible (%.4f)" % near[0])

	# ... far (20 m: past forward_radius 8, within hearing_radius 30): no longer forwarded, in the bed
	await walk(avatar, spot + Vector3(0, 0, 20.0), 6.0)
	await wait(1.5)
	var far: Array = await forwarded_level(talker, 1.5)
	var bed := await bed_level(w, 1.0)
	t.info("far (20 m): %d forwarded frames in 1.5 s, bed level %.4f (near %.4f, ratio %.3f)" % [far[1], bed, near[0], bed / maxf(near[0], 1e-9)])
	t.ok(far[1] <= 3, "speaking bot no longer forwarded when far (%d frames)" % far[1])
	t.ok(bed > 0.0005, "heard in the mixed bed when far (%.4f)" % bed)
	t.ok(bed < near[0] * 0.5, "bed level at 20 m (%.4f) well below the forwarded level at 2 m (%.4f)" % [bed, near[0]])
	t.ok(errors.is_empty(), "no server errors: %s" % [errors])
	t.info("stats %s" % [w.stats])
	w.leave()
	await wait(0.5)
	t.finish(self)

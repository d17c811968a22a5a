extends "res://tests/live_test.gd"
## Reconnection with backoff (driven by tests/godot/test_reconnect.py). Args: url=... token=...
## Phase 1: no server yet -> the world retries with growing delays, then joins once the server is up.
## Phase 2: prints "INFO phase: joined", the test restarts the server -> bye/close -> the world
## reconnects by itself and joins again (resume token offered; a fresh server may refuse it: 132).

var delays: Array[float] = []
var joins := 0
var errors: Array = []


func run() -> void:
	var avatar := Node3D.new()
	root.add_child(avatar)
	var w := HubbubWorld.new()
	w.local_avatar = avatar
	w.voice_enabled = false
	w.reconnect_min_delay = 0.25
	w.reconnect_max_delay = 2.0
	root.add_child(w)
	w.reconnecting.connect(func(_attempt: int, delay: float) -> void: delays.append(delay))
	w.joined.connect(func(_pid: int, _w: Dictionary) -> void: joins += 1)
	w.error.connect(func(code: int, msg: String, _ref: String) -> void: errors.append([code, msg]))
	w.connect_to_world(args["url"], args["token"])
	t.ok(await wait_until(func() -> bool: return w.is_joined(), 30.0), "joined once the server came up")
	t.ok(delays.size() >= 2, "retried before the server was up (%d attempts)" % delays.size())
	if delays.size() >= 3:
		t.ok(delays[2] > delays[0] * 1.5, "backoff grows: %s" % [delays])
	t.ok(delays.all(func(d: float) -> bool: return d <= 2.0 * 1.2 + 1e-6), "backoff capped at max (+jitter)")
	t.info("retry delays before first join: %s" % [delays.map(func(d: float) -> String: return "%.2f" % d)])
	var first_pid := w.participant_id
	var retries_before := delays.size()
	print("INFO phase: joined")
	t.ok(await wait_until(func() -> bool: return not w.is_joined(), 30.0), "noticed the server going away")
	t.ok(await wait_until(func() -> bool: return joins >= 2, 30.0), "joined again after the restart")
	t.ok(delays.size() > retries_before, "reconnect went through the backoff path")
	t.eq(w.state, HubbubWorld.State.JOINED, "state JOINED")
	t.info("participant id %d -> %d, errors %s" % [first_pid, w.participant_id, errors])
	for e: Array in errors:
		t.ok(e[0] == -1 or e[0] == HubbubProtocol.ErrorCode.RESUME_FAILED, "only expected errors: %s" % [e])
	w.leave()
	t.ok(await wait_until(func() -> bool: return w.state == HubbubWorld.State.DISCONNECTED, 5.0), "left")
	t.finish(self)

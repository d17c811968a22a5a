extends SceneTree
## Base of the GDScript tests that run against a server: parses the `key=value` user arguments
## (after `--` on Godot's command line) into `args`, then calls the script's `run()` on the first
## frame; `wait_until` and `wait` poll while letting the scene tree (and the network) advance.

const Check := preload("res://tests/check.gd")
var t: RefCounted
var args := {}


func _initialize() -> void:
	t = Check.new()
	for arg in OS.get_cmdline_user_args():
		var kv := arg.split("=", true, 1)
		args[kv[0]] = kv[1] if kv.size() > 1 else ""
	run.call_deferred()


## Each test script overrides this with its scenario (and ends with `quit(t.finish())` or similar).
func run() -> void:
	pass


func wait_until(cond: Callable, timeout_s: float) -> bool:
	var end := Time.get_ticks_msec() + int(timeout_s * 1000)
	while Time.get_ticks_msec() < end:
		if cond.call():
			return true
		await process_frame
	return cond.call()


func wait(seconds: float) -> void:
	var end := Time.get_ticks_msec() + int(seconds * 1000)
	while Time.get_ticks_msec() < end:
		await process_frame

extends Node3D
## Demo glue: find a server and a token, join, show what is going on.
## Options (after `--` on the command line) or environment variables:
##   --server=http://127.0.0.1:7880   HUBBUB_SERVER  (asks its /dev/token for an anonymous token)
##   --url=ws://HOST:PORT/rtc --token=JWT  HUBBUB_URL / HUBBUB_TOKEN  (a token you minted:
##                                          hubbub token --config examples/plaza.toml --world plaza --identity me)
##   --name=Ann  --quit-after=SECONDS (smoke tests)

@onready var world: HubbubWorld = $HubbubWorld
@onready var hud: Label = $HUD
var _opts := {}
var _log: Array[String] = []


func _ready() -> void:
	for arg in OS.get_cmdline_user_args():
		var kv := arg.trim_prefix("--").split("=", true, 1)
		_opts[kv[0]] = kv[1] if kv.size() > 1 else "true"
	world.joined.connect(func(pid: int, w: Dictionary) -> void: _note("joined %s as #%d" % [w["world"]["name"], pid]))
	world.left.connect(func(reason: String) -> void: _note("left: " + reason))
	world.participant_entered.connect(func(pid: int, info: Dictionary) -> void: _note("%s (#%d) is near" % [info.get("name", "?"), pid]))
	world.participant_exited.connect(func(pid: int) -> void: _note("#%d went away" % pid))
	world.corrected.connect(func(_p: Vector3, _q: Quaternion, reason: String) -> void: _note("server moved you: " + reason))
	world.error.connect(func(code: int, message: String, _ref: String) -> void: _note("error %d: %s" % [code, message]))
	world.reconnecting.connect(func(n: int, delay: float) -> void: _note("reconnecting (#%d) in %.1f s" % [n, delay]))
	if _opts.has("quit-after"):
		get_tree().create_timer(float(_opts["quit-after"])).timeout.connect(get_tree().quit)
	var url := _opt("url", "HUBBUB_URL")
	var token := _opt("token", "HUBBUB_TOKEN")
	if url != "" and token != "":
		world.connect_to_world(url, token)
	else:
		_fetch_dev_token(_opt("server", "HUBBUB_SERVER", "http://127.0.0.1:7880"))


func _opt(name: String, env: String, fallback: String = "") -> String:
	if _opts.has(name):
		return _opts[name]
	return OS.get_environment(env) if OS.has_environment(env) else fallback


## plaza.toml allows anonymous tokens (server.allow_anonymous): GET /dev/token returns {token, url}.
func _fetch_dev_token(server: String) -> void:
	var http := HTTPRequest.new()
	add_child(http)
	http.request_completed.connect(func(result: int, code: int, _h: PackedStringArray, body: PackedByteArray) -> void:
		var reply: Variant = JSON.parse_string(body.get_string_from_utf8()) if result == HTTPRequest.RESULT_SUCCESS else null
		if code != 200 or typeof(reply) != TYPE_DICTIONARY:
			_note("no dev token from %s (HTTP %d); pass --url and --token" % [server, code])
			return
		world.connect_to_world(reply["url"], reply["token"]))
	var name := _opts.get("name", "Godot") as String
	_note("asking %s for a dev token" % server)
	http.request("%s/dev/token?world=plaza&name=%s" % [server, name.uri_encode()])


func _note(line: String) -> void:
	print("hubbub demo: ", line)
	_log.append(line)
	if _log.size() > 6:
		_log.pop_front()


func _process(_delta: float) -> void:
	var talking := world.talking or Input.is_action_pressed(&"hubbub_push_to_talk")
	hud.text = "%s   nearby: %d   rtt: %s   mic: %s%s\nWASD walk, Q/E turn, hold V to talk\n%s" % [
		HubbubWorld.State.keys()[world.state], world.remotes.size(),
		"%.0f ms" % world.last_rtt_ms if world.last_rtt_ms >= 0 else "-",
		"%.2f" % world.get_mic_level(),
		"  (talking)" if talking else "", "\n".join(_log)]

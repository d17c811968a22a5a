@tool
extends EditorPlugin
## Editor side of the addon. The runtime API is the `class_name` types (HubbubWorld is the node to add;
## class_name already lists it in the Create Node dialog). Enabling the plugin
## prepares the two project settings voice needs:
## - input action `hubbub_push_to_talk` (V) for HubbubWorld.push_to_talk,
## - `audio/driver/enable_input`, without which Godot delivers no microphone samples.

const PTT_ACTION := "input/hubbub_push_to_talk"


func _enable_plugin() -> void:
	var changed := false
	if not ProjectSettings.has_setting(PTT_ACTION):
		var key := InputEventKey.new()
		key.physical_keycode = KEY_V
		ProjectSettings.set_setting(PTT_ACTION, {"deadzone": 0.5, "events": [key]})
		changed = true
	if not ProjectSettings.get_setting("audio/driver/enable_input", false):
		ProjectSettings.set_setting("audio/driver/enable_input", true)
		changed = true
	if changed:
		ProjectSettings.save()
		print_rich("[b]Hubbub[/b]: added input action hubbub_push_to_talk (V) and enabled audio input.")


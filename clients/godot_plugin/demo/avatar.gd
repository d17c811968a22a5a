extends Node3D
## WASD walks (relative to where the avatar faces), Q/E turn. 4 m/s stays under plaza's max_speed (8).

@export var speed := 4.0
@export var turn_speed := 2.0


func _process(delta: float) -> void:
	var turn := float(Input.is_physical_key_pressed(KEY_Q)) - float(Input.is_physical_key_pressed(KEY_E))
	rotate_y(turn * turn_speed * delta)
	var input := Vector3(
		float(Input.is_physical_key_pressed(KEY_D)) - float(Input.is_physical_key_pressed(KEY_A)),
		0.0,
		float(Input.is_physical_key_pressed(KEY_S)) - float(Input.is_physical_key_pressed(KEY_W)))
	if input != Vector3.ZERO:
		global_position += global_transform.basis * input.normalized() * speed * delta

class_name HubbubVoiceCapture
extends Node
## Microphone capture for Hubbub voice: an AudioEffectCapture on a muted bus (the capture still sees
## the samples; the mute keeps your own voice out of your speakers), resampled from the mix rate to
## 16 kHz and cut into 20 ms frames of int16. Give each HubbubWorld its own bus: captures on one bus
## share one AudioEffectCapture, and each would drain part of it.
##
## With use_microphone = false nothing plays on the bus unless you put something there (any
## AudioStreamPlayer with bus = bus_name): tests feed a generator this way, through the same path.

@export var bus_name: StringName = &"HubbubMic"
@export var use_microphone := true

## RMS (0..1) of the last frame captured.
var input_level := 0.0
var frames_captured := 0

var _capture: AudioEffectCapture
var _resampler: HubbubResampler
var _pending := PackedFloat32Array()
var _mic: AudioStreamPlayer


func _ready() -> void:
	var idx := AudioServer.get_bus_index(bus_name)
	if idx < 0:
		AudioServer.add_bus()
		idx = AudioServer.bus_count - 1
		AudioServer.set_bus_name(idx, bus_name)
	for i in AudioServer.get_bus_effect_count(idx):
		var effect := AudioServer.get_bus_effect(idx, i)
		if effect is AudioEffectCapture:
			_capture = effect
	if _capture == null:
		_capture = AudioEffectCapture.new()
		_capture.buffer_length = 0.5  # survives a frame hitch of half a second
		AudioServer.add_bus_effect(idx, _capture)
	AudioServer.set_bus_mute(idx, true)
	_resampler = HubbubResampler.new(AudioServer.get_mix_rate(), HubbubVoiceCodec.SAMPLE_RATE)
	if use_microphone:
		if not ProjectSettings.get_setting("audio/driver/enable_input", false):
			push_warning("Hubbub: audio/driver/enable_input is off; the microphone will be silent")
		_mic = AudioStreamPlayer.new()
		_mic.name = "HubbubMicrophone"
		_mic.stream = AudioStreamMicrophone.new()
		_mic.bus = bus_name
		add_child(_mic)
		_mic.play()


## Forgets captured audio not yet read.
func clear() -> void:
	if _capture != null:
		_capture.clear_buffer()
	_pending.clear()


## Drains the capture buffer; returns the complete 16 kHz frames (FRAME_SAMPLES int16 each).
func read_frames() -> Array[PackedInt32Array]:
	var frames: Array[PackedInt32Array] = []
	if _capture == null:
		return frames
	var available := _capture.get_frames_available()
	if available > 0:
		var stereo := _capture.get_buffer(available)
		var mono := PackedFloat32Array()
		mono.resize(stereo.size())
		for i in stereo.size():
			mono[i] = 0.5 * (stereo[i].x + stereo[i].y)
		_pending.append_array(_resampler.process(mono))
	var n := HubbubVoiceCodec.FRAME_SAMPLES
	var used := 0
	while _pending.size() - used >= n:
		var frame := HubbubVoiceCodec.floats_to_int16(_pending.slice(used, used + n))
		used += n
		input_level = HubbubVoiceCodec.rms(frame)
		frames_captured += 1
		frames.append(frame)
	if used > 0:
		_pending = _pending.slice(used)
	return frames

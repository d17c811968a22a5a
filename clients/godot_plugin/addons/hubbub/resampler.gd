class_name HubbubResampler
extends RefCounted
## Streaming mono resampler for microphone capture: the engine's mix rate (44.1 or 48 kHz) down to the
## codec's 16 kHz. A 6th-order Butterworth low-pass (three biquads) at 0.42 × the output rate (6.7 kHz)
## removes what would alias (a 12 kHz tone comes out ~30 dB down), then linear interpolation picks the
## output instants. Speech above 7 kHz is not worth more CPU in GDScript.

var in_rate: float
var out_rate: float
var _step: float
var _t := 0.0  # position of the next output sample, in input samples after _prev
var _prev := 0.0
var _filter := true
# three biquads: coefficients [b0 b1 b2 a1 a2] each, state z1 z2 each
var _coeffs: Array[PackedFloat64Array] = []
var _z := PackedFloat64Array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])


func _init(p_in_rate: float, p_out_rate: float = 16000.0) -> void:
	in_rate = p_in_rate
	out_rate = p_out_rate
	_step = in_rate / out_rate
	_filter = out_rate < in_rate
	if _filter:
		var fc := 0.42 * out_rate
		for q: float in [0.51763809, 0.70710678, 1.93185165]:  # Butterworth 6th order as 3 sections
			_coeffs.append(_lowpass(fc, in_rate, q))


static func _lowpass(fc: float, fs: float, q: float) -> PackedFloat64Array:
	# RBJ cookbook low-pass, normalised by a0.
	var w := TAU * fc / fs
	var alpha := sin(w) / (2.0 * q)
	var cw := cos(w)
	var a0 := 1.0 + alpha
	var b1 := (1.0 - cw) / a0
	return PackedFloat64Array([b1 / 2.0, b1, b1 / 2.0, -2.0 * cw / a0, (1.0 - alpha) / a0])


## Feeds input samples; returns the output samples they complete (the count varies by ±1).
func process(input: PackedFloat32Array) -> PackedFloat32Array:
	var n := input.size()
	var x := input
	if _filter:
		for k in _coeffs.size():
			x = _biquad(x, _coeffs[k], 2 * k)
	var out := PackedFloat32Array()
	out.resize(int((n - _t) / _step) + 2)
	var count := 0
	var t := _t
	var prev := _prev
	while t < n:
		var i := int(t)
		var a := prev if i == 0 else x[i - 1]
		out[count] = a + (x[i] - a) * (t - i)
		count += 1
		t += _step
	out.resize(count)
	_t = t - n
	if n > 0:
		_prev = x[n - 1]
	return out


func _biquad(x: PackedFloat32Array, c: PackedFloat64Array, zi: int) -> PackedFloat32Array:
	# Transposed direct form II.
	var b0 := c[0]
	var b1 := c[1]
	var b2 := c[2]
	var a1 := c[3]
	var a2 := c[4]
	var z1 := _z[zi]
	var z2 := _z[zi + 1]
	var y := PackedFloat32Array()
	y.resize(x.size())
	for i in x.size():
		var v := x[i]
		var o := b0 * v + z1
		z1 = b1 * v - a1 * o + z2
		z2 = b2 * v - a2 * o
		y[i] = o
	_z[zi] = z1
	_z[zi + 1] = z2
	return y

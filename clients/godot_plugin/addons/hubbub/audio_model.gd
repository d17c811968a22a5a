class_name HubbubAudioModel
extends RefCounted
## Maps the world's distance model (welcome.world.audio) onto Godot's AudioStreamPlayer3D, so that a
## forwarded voice is attenuated on this client the way the server attenuates the same voice in a mix.
##
## The server's curves are OpenAL's (spatial/distance.py): d_c = clamp(d, ref, max) for *_clamped, then
##   inverse g = ref / (ref + rolloff·(d_c − ref)); linear g = max(0, 1 − rolloff·(d_c − ref)/(max − ref));
##   exponential g = (d_c/ref)^−rolloff; gain clamped to [0, 1].
## Godot's player (r = d/unit_size): INVERSE 1/r, INVERSE_SQUARE 1/r², LOGARITHMIC r^−ln10, capped by
## max_db. So with unit_size = ref and max_db = 0:
##   inverse(_clamped), rolloff 1        -> ATTENUATION_INVERSE_DISTANCE        (native)
##   exponential(_clamped), rolloff 2    -> ATTENUATION_INVERSE_SQUARE_DISTANCE (native)
##   exponential(_clamped), rolloff ln10 -> ATTENUATION_LOGARITHMIC             (native)
## What cannot be matched natively (every linear model, other rolloffs) runs with
## ATTENUATION_DISABLED and a volume_db that HubbubWorld recomputes from gain() every frame.
## Native modes differ in one place only: beyond max_distance a *_clamped model holds its last gain
## while Godot keeps falling; the server stops forwarding past its hearing radius, so it rarely shows.
## Godot's own max_distance is left at 0: it would multiply every gain by (1 − d/max). Its distance
## low-pass (attenuation_filter_db) and doppler are switched off: the server's mixer has neither.
## Panning is always Godot's (SPCAP); set the world's pan_law = "godot" for the server's mix to match.

const NATIVE_TOLERANCE := 1e-4


## Configures `player` for `audio` (the welcome's world.audio). Returns true if Godot attenuates
## natively, false if the caller must set volume_db = linear_to_db(gain(audio, distance)) per frame.
static func configure_player(player: AudioStreamPlayer3D, audio: Dictionary) -> bool:
	var model: String = str(audio.get("distance_model", "inverse_clamped"))
	var ref := maxf(float(audio.get("reference_distance", 1.0)), 1e-3)
	var rolloff := float(audio.get("rolloff", 1.0))
	player.unit_size = ref
	player.max_db = 0.0
	player.max_distance = 0.0
	player.volume_db = 0.0
	player.attenuation_filter_db = 0.0
	player.doppler_tracking = AudioStreamPlayer3D.DOPPLER_TRACKING_DISABLED
	var base := model.trim_suffix("_clamped")
	var mode := -1
	if base == "inverse" and absf(rolloff - 1.0) < NATIVE_TOLERANCE:
		mode = AudioStreamPlayer3D.ATTENUATION_INVERSE_DISTANCE
	elif base == "exponential" and absf(rolloff - 2.0) < NATIVE_TOLERANCE:
		mode = AudioStreamPlayer3D.ATTENUATION_INVERSE_SQUARE_DISTANCE
	elif base == "exponential" and absf(rolloff - log(10.0)) < NATIVE_TOLERANCE:
		mode = AudioStreamPlayer3D.ATTENUATION_LOGARITHMIC
	if mode >= 0:
		player.attenuation_model = mode
		return true
	player.attenuation_model = AudioStreamPlayer3D.ATTENUATION_DISABLED
	return false


## The server's gain at `distance` (same formulas and edge cases as spatial/distance.py).
static func gain(audio: Dictionary, distance: float) -> float:
	var model: String = str(audio.get("distance_model", "inverse_clamped"))
	var ref := float(audio.get("reference_distance", 1.0))
	var rolloff := float(audio.get("rolloff", 1.0))
	var dmax := float(audio.get("max_distance", 3.4028234663852886e38))
	var base := model.trim_suffix("_clamped")
	var d := distance
	if model.ends_with("_clamped"):
		if dmax < ref:
			return 1.0
		d = clampf(d, ref, dmax)
	var g := 1.0
	match base:
		"inverse":
			var denom := ref + rolloff * (d - ref)
			g = ref / denom if ref > 0.0 and denom > 0.0 else 1.0
		"linear":
			g = 1.0 if dmax == ref else maxf(0.0, 1.0 - rolloff * (d - ref) / (dmax - ref))
		"exponential":
			g = pow(d / ref, -rolloff) if d > 0.0 and ref > 0.0 else 1.0
	return clampf(g, 0.0, 1.0)

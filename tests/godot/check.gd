extends RefCounted
## Minimal assertion helper for the `extends SceneTree` test scripts run by tests/godot/*.py.
## Prints "FAIL <what>" for each failed check, "INFO <what>" for measurements and a final
## "SUMMARY passed=N failed=M" line; finish() quits with exit code 1 if anything failed.

var passed := 0
var failed := 0


func ok(cond: bool, what: String) -> bool:
	if cond:
		passed += 1
	else:
		failed += 1
		print("FAIL ", what)
	return cond


func eq(actual: Variant, expected: Variant, what: String) -> bool:
	var same: bool = typeof(actual) == typeof(expected) and actual == expected
	if not same:
		print("FAIL ", what, ": got ", _short(actual), " (", type_string(typeof(actual)), "), expected ",
				_short(expected), " (", type_string(typeof(expected)), ")")
		failed += 1
		return false
	passed += 1
	return true


func near(actual: float, expected: float, tol: float, what: String) -> bool:
	if absf(actual - expected) <= tol:
		passed += 1
		return true
	failed += 1
	print("FAIL ", what, ": got ", actual, ", expected ", expected, " ± ", tol)
	return false


func info(what: String) -> void:
	print("INFO ", what)


func finish(tree: SceneTree) -> void:
	print("SUMMARY passed=%d failed=%d" % [passed, failed])
	tree.quit(1 if failed > 0 or passed == 0 else 0)


func _short(v: Variant) -> String:
	var s := str(v)
	return s if s.length() < 300 else s.substr(0, 300) + "…"

class_name HubbubWebSocketTransport
extends HubbubTransport
## Everything over one WebSocket (join with transport = "websocket"): binary frames, one msgpack map
## each. Text (JSON) frames from the server are accepted too.

## Droppable messages are not queued while more than this many bytes wait to be sent.
const DROP_THRESHOLD := 64 * 1024

var ws := WebSocketPeer.new()
var _was_open := false
var _closed_emitted := false


func _init() -> void:
	kind = "websocket"
	ws.inbound_buffer_size = 1 << 20  # a welcome with many zones, or a burst of voice, fits
	ws.outbound_buffer_size = 1 << 20
	ws.max_queued_packets = 4096


func open(url: String) -> Error:
	return ws.connect_to_url(url)


func poll() -> void:
	if _closed_emitted:
		return
	ws.poll()
	var st := ws.get_ready_state()
	if st == WebSocketPeer.STATE_OPEN and not _was_open:
		_was_open = true
		opened.emit()
	while ws.get_available_packet_count() > 0:
		var frame := ws.get_packet()
		var res := HubbubProtocol.decode_frame(frame, ws.was_string_packet())
		if res["error"] != "":
			bad_frame.emit(res["error"])
		else:
			message_received.emit(res["msg"])
		if _closed_emitted:  # a handler closed us
			return
	if st == WebSocketPeer.STATE_CLOSED and not _closed_emitted:
		_closed_emitted = true
		closed.emit(ws.get_close_code(), ws.get_close_reason())


func send(msg: Dictionary, droppable: bool = false) -> bool:
	if ws.get_ready_state() != WebSocketPeer.STATE_OPEN:
		return false
	if droppable and ws.get_current_outbound_buffered_amount() > DROP_THRESHOLD:
		return false
	var frame := HubbubMsgPack.encode(msg)
	if frame.is_empty():
		return false
	return ws.send(frame, WebSocketPeer.WRITE_MODE_BINARY) == OK


func close(code: int = 1000, reason: String = "") -> void:
	if ws.get_ready_state() in [WebSocketPeer.STATE_CONNECTING, WebSocketPeer.STATE_OPEN]:
		ws.close(code, reason)


func is_open() -> bool:
	return ws.get_ready_state() == WebSocketPeer.STATE_OPEN


func buffered_amount() -> int:
	return ws.get_current_outbound_buffered_amount()

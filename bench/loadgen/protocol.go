package main

// The three wire protocols behind one interface. Each knows how to authenticate and join a
// room on a freshly dialled socket, how to frame one chat message, and how to read what the
// server sends: deliveries (the body of a message published to the socket's room), acks of
// this socket's own sends, pings that need an answer, and errors.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// Event is what one incoming frame meant.
type Event struct {
	Bodies []string // delivered message bodies (a frame may carry several: Centrifugo batches)
	AckIDs []int    // message ids acknowledged to this socket
	Reply  [][]byte // frames to send back at once (pings)
	Errors []string // error codes
}

// Protocol is one server's client protocol.
type Protocol interface {
	// Path is appended to the socket's URL (query strings for Engine.IO).
	Path() string
	// Handshake authenticates and subscribes the socket to its room; it returns once the
	// server has confirmed both.
	Handshake(c *websocket.Conn, spec SocketSpec, deadline time.Time) error
	// SendFrame is the frame that publishes body into room as message id.
	SendFrame(id int, room, clientID, body string) []byte
	// Parse reads one incoming WebSocket message.
	Parse(data []byte, ev *Event)
}

func newProtocol(name string) (Protocol, error) {
	switch name {
	case "chat":
		return chatProto{}, nil
	case "centrifugo":
		return centrifugoProto{}, nil
	case "socketio":
		return socketioProto{}, nil
	}
	return nil, fmt.Errorf("unknown protocol %q (chat, centrifugo, socketio)", name)
}

func readUntil(c *websocket.Conn, deadline time.Time, done func([]byte) (bool, error)) error {
	_ = c.SetReadDeadline(deadline)
	defer c.SetReadDeadline(time.Time{})
	for i := 0; i < 10000; i++ { // bounded: presence notices and pings may come first
		_, data, err := c.ReadMessage()
		if err != nil {
			return err
		}
		ok, err := done(data)
		if err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("no confirmation in 10000 frames")
}

// --- chatcluster (docs/protocol.md) -----------------------------------------------------------

type chatProto struct{}

type chatFrame struct {
	Type string          `json:"type"`
	Ref  json.RawMessage `json:"ref"`
	Body string          `json:"body"`
	Code string          `json:"code"`
}

func (chatProto) Path() string { return "" }

func (chatProto) Handshake(c *websocket.Conn, spec SocketSpec, deadline time.Time) error {
	auth, _ := json.Marshal(map[string]any{"type": "auth", "ref": "auth", "token": spec.Token})
	if err := c.WriteMessage(websocket.TextMessage, auth); err != nil {
		return err
	}
	// A user's sockets are subscribed to every conversation the user is in at `ready`.
	return readUntil(c, deadline, func(data []byte) (bool, error) {
		var f chatFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return false, err
		}
		switch f.Type {
		case "ready":
			return true, nil
		case "error":
			return false, fmt.Errorf("auth: %s", data)
		}
		return false, nil
	})
}

func (chatProto) SendFrame(id int, room, clientID, body string) []byte {
	out, _ := json.Marshal(map[string]any{
		"type": "send", "ref": strconv.Itoa(id), "conversation_id": room,
		"client_id": clientID, "body": body,
	})
	return out
}

func (chatProto) Parse(data []byte, ev *Event) {
	var f chatFrame
	if err := json.Unmarshal(data, &f); err != nil {
		ev.Errors = append(ev.Errors, "bad_json")
		return
	}
	switch f.Type {
	case "message":
		ev.Bodies = append(ev.Bodies, f.Body)
	case "ack":
		var ref string
		if json.Unmarshal(f.Ref, &ref) == nil {
			if id, err := strconv.Atoi(ref); err == nil {
				ev.AckIDs = append(ev.AckIDs, id)
			}
		}
	case "error":
		ev.Errors = append(ev.Errors, f.Code)
	}
}

// --- Centrifugo's JSON protocol (v6): newline-delimited commands and replies ------------------

type centrifugoProto struct{}

// Command ids 1 and 2 are the handshake's; a publish of message id n uses n + idBase.
const idBase = 10

type centReply struct {
	ID    int `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Push *struct {
		Pub *struct {
			Data struct {
				B string `json:"b"`
			} `json:"data"`
		} `json:"pub"`
	} `json:"push"`
}

func (centrifugoProto) Path() string { return "" }

func (centrifugoProto) Handshake(c *websocket.Conn, spec SocketSpec, deadline time.Time) error {
	connect, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]any{"token": spec.Token, "name": "bench"}})
	sub, _ := json.Marshal(map[string]any{"id": 2, "subscribe": map[string]any{"channel": spec.Room}})
	if err := c.WriteMessage(websocket.TextMessage, append(append(connect, '\n'), sub...)); err != nil {
		return err
	}
	return readUntil(c, deadline, func(data []byte) (bool, error) {
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var r centReply
			if err := json.Unmarshal(line, &r); err != nil {
				return false, err
			}
			if r.Error != nil {
				return false, fmt.Errorf("centrifugo: %s", line)
			}
			if r.ID == 2 {
				return true, nil
			}
		}
		return false, nil
	})
}

func (centrifugoProto) SendFrame(id int, room, clientID, body string) []byte {
	out, _ := json.Marshal(map[string]any{
		"id": id + idBase, "publish": map[string]any{"channel": room, "data": map[string]string{"b": body}},
	})
	return out
}

func (centrifugoProto) Parse(data []byte, ev *Event) {
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if string(line) == "{}" { // server ping: answer with an empty command (pong)
			ev.Reply = append(ev.Reply, []byte("{}"))
			continue
		}
		var r centReply
		if err := json.Unmarshal(line, &r); err != nil {
			ev.Errors = append(ev.Errors, "bad_json")
			continue
		}
		switch {
		case r.Error != nil:
			ev.Errors = append(ev.Errors, strconv.Itoa(r.Error.Code))
		case r.Push != nil && r.Push.Pub != nil:
			ev.Bodies = append(ev.Bodies, r.Push.Pub.Data.B)
		case r.ID >= idBase:
			ev.AckIDs = append(ev.AckIDs, r.ID-idBase)
		}
	}
}

// --- Socket.IO v5 over Engine.IO v4, WebSocket transport only ----------------------------------
//
// Engine.IO packets are one digit then data: 0 open, 2 ping (answer 3), 4 message. A Socket.IO
// packet rides in a message: 0 connect, 2 event, 3 ack, 4 connect error; an ack id follows the
// type digit. The bench server (bench/peers/socketio_server.py) handles "join" and "send".

type socketioProto struct{}

func (socketioProto) Path() string { return "/socket.io/?EIO=4&transport=websocket" }

func (socketioProto) Handshake(c *websocket.Conn, spec SocketSpec, deadline time.Time) error {
	step := 0
	return readUntil(c, deadline, func(data []byte) (bool, error) {
		s := string(data)
		switch {
		case s == "2":
			return false, c.WriteMessage(websocket.TextMessage, []byte("3"))
		case step == 0 && len(s) > 0 && s[0] == '0':
			step = 1
			return false, c.WriteMessage(websocket.TextMessage, []byte("40"))
		case step == 1 && len(s) >= 2 && s[:2] == "40":
			step = 2
			join, _ := json.Marshal([]any{"join", spec.Room})
			return false, c.WriteMessage(websocket.TextMessage, append([]byte("421"), join...))
		case step == 2 && len(s) >= 4 && s[:4] == "431[":
			return true, nil
		case len(s) >= 2 && s[:2] == "44":
			return false, fmt.Errorf("socket.io connect error: %s", s)
		}
		return false, nil
	})
}

func (socketioProto) SendFrame(id int, room, clientID, body string) []byte {
	payload, _ := json.Marshal([]any{"send", map[string]string{"room": room, "b": body}})
	return append([]byte("42"+strconv.Itoa(id+idBase)), payload...)
}

func (socketioProto) Parse(data []byte, ev *Event) {
	s := string(data)
	switch {
	case s == "2":
		ev.Reply = append(ev.Reply, []byte("3"))
	case len(s) > 2 && s[:2] == "42":
		var args []json.RawMessage
		if json.Unmarshal(data[2:], &args) != nil || len(args) < 2 {
			ev.Errors = append(ev.Errors, "bad_event")
			return
		}
		var m struct {
			B string `json:"b"`
		}
		if json.Unmarshal(args[1], &m) != nil {
			ev.Errors = append(ev.Errors, "bad_event")
			return
		}
		ev.Bodies = append(ev.Bodies, m.B)
	case len(s) > 2 && s[:2] == "43":
		end := 2
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		if n, err := strconv.Atoi(s[2:end]); err == nil && n >= idBase {
			ev.AckIDs = append(ev.AckIDs, n-idBase)
		}
	case len(s) >= 2 && s[:2] == "44":
		ev.Errors = append(ev.Errors, "connect_error")
	case len(s) >= 1 && s[0] == '1':
		ev.Errors = append(ev.Errors, "closed")
	}
}

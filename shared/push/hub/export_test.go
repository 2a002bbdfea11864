package hub

// WriterRunning reports whether the connection has a writer goroutine.
func (h *Hub) WriterRunning(connectionID string) bool {
	c := h.get(connectionID)
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writing
}

// WriterIdle returns a channel told each time the connection's writer ends
// with nothing left to write.
func (h *Hub) WriterIdle(connectionID string) <-chan struct{} {
	idle := make(chan struct{}, 16)
	c := h.get(connectionID)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writerIdle = func() { idle <- struct{}{} }
	return idle
}

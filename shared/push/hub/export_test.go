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

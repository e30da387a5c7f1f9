//go:build race

package memory

// raceEnabled: the race detector slows the vector arithmetic of the
// recall tests about twentyfold.
const raceEnabled = true

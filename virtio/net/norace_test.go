//go:build !race

package virtionet

const raceDetector = false

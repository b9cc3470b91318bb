// Package viewer will hold the OpenGL instanced renderer that shows a graph
// live and replays its history, its layout and headless capture. It is the
// only package that uses cgo and GL.
//
// Nothing lives here yet.
package viewer

//go:build viewer

package viewer

import (
	"fmt"
	"strings"

	"github.com/go-gl/gl/v4.5-core/gl"
)

// initGL loads the GL functions for the current context and checks that it
// is OpenGL 3.3 core or newer. Its errors wrap ErrGLVersion or ErrGL.
func initGL() (version string, err error) {
	if err := gl.Init(); err != nil {
		return "", fmt.Errorf("%w: load GL functions: missing %v", ErrGLVersion, err)
	}
	version = gl.GoStr(gl.GetString(gl.VERSION))
	var major, minor int32
	gl.GetIntegerv(gl.MAJOR_VERSION, &major)
	gl.GetIntegerv(gl.MINOR_VERSION, &minor)
	if major < 3 || (major == 3 && minor < 3) {
		return version, fmt.Errorf("%w: context is %q", ErrGLVersion, version)
	}
	return version, nil
}

// compileProgram links a vertex and a fragment shader.
func compileProgram(name, vs, fs string) (uint32, error) {
	v, err := compileShader(name, gl.VERTEX_SHADER, vs)
	if err != nil {
		return 0, err
	}
	defer gl.DeleteShader(v)
	f, err := compileShader(name, gl.FRAGMENT_SHADER, fs)
	if err != nil {
		return 0, err
	}
	defer gl.DeleteShader(f)
	p := gl.CreateProgram()
	gl.AttachShader(p, v)
	gl.AttachShader(p, f)
	gl.LinkProgram(p)
	var ok int32
	gl.GetProgramiv(p, gl.LINK_STATUS, &ok)
	if ok == gl.FALSE {
		log := programLog(p)
		gl.DeleteProgram(p)
		return 0, fmt.Errorf("%w: link %s program: %s", ErrGL, name, log)
	}
	return p, nil
}

func compileShader(name string, kind uint32, src string) (uint32, error) {
	s := gl.CreateShader(kind)
	cs, free := gl.Strs(src + "\x00")
	gl.ShaderSource(s, 1, cs, nil)
	free()
	gl.CompileShader(s)
	var ok int32
	gl.GetShaderiv(s, gl.COMPILE_STATUS, &ok)
	if ok == gl.FALSE {
		var n int32
		gl.GetShaderiv(s, gl.INFO_LOG_LENGTH, &n)
		log := strings.Repeat("\x00", int(n)+1)
		gl.GetShaderInfoLog(s, n, nil, gl.Str(log))
		gl.DeleteShader(s)
		return 0, fmt.Errorf("%w: compile %s shader: %s", ErrGL, name, strings.TrimRight(log, "\x00"))
	}
	return s, nil
}

func programLog(p uint32) string {
	var n int32
	gl.GetProgramiv(p, gl.INFO_LOG_LENGTH, &n)
	log := strings.Repeat("\x00", int(n)+1)
	gl.GetProgramInfoLog(p, n, nil, gl.Str(log))
	return strings.TrimRight(log, "\x00")
}

// uniform returns the location of a uniform of p.
func uniform(p uint32, name string) int32 {
	return gl.GetUniformLocation(p, gl.Str(name+"\x00"))
}

// glError returns an error wrapping ErrGL if GL recorded one, naming what.
func glError(what string) error {
	if e := gl.GetError(); e != gl.NO_ERROR {
		return fmt.Errorf("%w: %s: glGetError 0x%04x", ErrGL, what, e)
	}
	return nil
}

package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{20, 20, 20, 255}
	grey  = color.RGBA{200, 200, 200, 255}
	// basicfont has no µ: chart text says "us".
	// One colour per target, in a fixed order so charts of different runs match.
	palette = map[string]color.RGBA{
		"direct":  {140, 140, 140, 255},
		"nginx":   {0, 150, 57, 255},
		"haproxy": {30, 100, 200, 255},
		"wsgate":  {230, 120, 0, 255},
	}
	fallback = color.RGBA{150, 60, 160, 255}
)

// panel is one bar chart: one bar per target for one figure.
type panel struct {
	title string
	sub   string
	key   string
	unit  func(float64) string
	wss   bool // from Report.TLS rather than Report.Targets
}

var panels = []panel{
	{"CPU / handshake", "proxy CPU us per handshake, lower is better", HSCPU, num, false},
	{"CPU / 64 B msg", "proxy CPU us per 64 B message, lower is better", EchoCPU, num, false},
	{"CPU / 64 KiB msg", "proxy CPU us per 64 KiB message, lower is better", TPCPU, num, false},
	{"KiB / idle tunnel", "proxy RSS slope per idle tunnel, lower is better", IdleKiB, func(v float64) string { return fmt.Sprintf("%.2f", v) }, false},
	{"handshakes/s", "16 workers, higher is better", HSRate, rate, false},
	{"64 KiB echo MB/s", "4 connections, higher is better", TPMBps, num, false},
}

// wssPanels form a third row when the run measured wss.
var wssPanels = []panel{
	{"wss CPU / handshake", "TLS 1.3 full handshake, proxy CPU us, lower is better", HSCPU, num, true},
	{"wss CPU / 64 B msg", "proxy CPU us per 64 B message, lower is better", EchoCPU, num, true},
	{"wss KiB / idle tunnel", "proxy RSS slope per idle tunnel, lower is better", IdleKiB, func(v float64) string { return fmt.Sprintf("%.2f", v) }, true},
}

const (
	cols           = 3
	panelW, panelH = 480, 360
	scale          = 2 // text is basicfont 7x13 drawn at twice its size
)

// Chart draws the run's key figures as grouped bar charts and writes a PNG.
func (r *Report) Chart(w io.Writer) error {
	all := panels
	if len(r.TLS) > 0 {
		all = append(append([]panel(nil), panels...), wssPanels...)
	}
	rows := (len(all) + cols - 1) / cols
	img := image.NewRGBA(image.Rect(0, 0, cols*panelW, rows*panelH+40))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	title := "wsgate benchmarks: median of " + fmt.Sprint(r.Rounds) + " round(s); whiskers: min-max"
	if r.Smoke {
		title += " (SMOKE RUN)"
	}
	text(img, 10, 8, title, 2, black)
	for i, p := range all {
		x0 := (i % cols) * panelW
		y0 := 40 + (i/cols)*panelH
		r.drawPanel(img, image.Rect(x0, y0, x0+panelW, y0+panelH), p)
	}
	return png.Encode(w, img)
}

func (r *Report) drawPanel(img *image.RGBA, b image.Rectangle, p panel) {
	textCentered(img, b.Min.X+b.Dx()/2, b.Min.Y+6, p.title, 2, black)
	textCentered(img, b.Min.X+b.Dx()/2, b.Min.Y+36, p.sub, 1, black)
	fillRect(img, image.Rect(b.Max.X-1, b.Min.Y, b.Max.X, b.Max.Y), grey)
	plot := image.Rect(b.Min.X+20, b.Min.Y+90, b.Max.X-20, b.Max.Y-50)
	targets := r.Targets
	if p.wss {
		targets = r.TLS
	}
	maxV := 0.0
	for _, t := range targets {
		s := t.fig(p.key)
		for _, v := range []float64{s.Median, s.Max} {
			if !math.IsNaN(v) && v > maxV {
				maxV = v
			}
		}
	}
	fillRect(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+2), black)
	n := len(targets)
	if n == 0 {
		return
	}
	slot := plot.Dx() / n
	barW := slot * 3 / 5
	for i, t := range targets {
		cx := plot.Min.X + slot*i + slot/2
		name := t.Name
		textCentered(img, cx, plot.Max.Y+8, name, 2, black)
		s := t.fig(p.key)
		if math.IsNaN(s.Median) || maxV <= 0 {
			label := "n/a"
			switch {
			case t.Status != "":
				label = "not run"
			case len(t.Notes) > 0:
				label = "failed"
			}
			textCentered(img, cx, plot.Max.Y-30, label, 2, grey)
			continue
		}
		y := func(v float64) int { return plot.Max.Y - int(math.Round(v/maxV*float64(plot.Dy()-10))) }
		c, ok := palette[t.Name]
		if !ok {
			c = fallback
		}
		top := y(s.Median)
		fillRect(img, image.Rect(cx-barW/2, top, cx+barW/2, plot.Max.Y), c)
		if s.N > 1 && !math.IsNaN(s.Min) {
			lo, hi := y(s.Min), y(s.Max)
			fillRect(img, image.Rect(cx-1, hi, cx+1, lo+1), black)
			fillRect(img, image.Rect(cx-6, hi, cx+6, hi+2), black)
			fillRect(img, image.Rect(cx-6, lo-1, cx+6, lo+1), black)
			top = min(top, hi)
		}
		textCentered(img, cx, top-30, p.unit(s.Median), 2, black)
	}
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

func textWidth(s string, sc int) int {
	return font.MeasureString(basicfont.Face7x13, s).Ceil() * sc
}

func textCentered(img *image.RGBA, cx, y int, s string, sc int, c color.Color) {
	text(img, cx-textWidth(s, sc)/2, y, s, sc, c)
}

// text draws s with its top-left corner at (x, y), magnified sc times by
// pixel replication so the bitmap font stays crisp.
func text(img *image.RGBA, x, y int, s string, sc int, c color.Color) {
	face := basicfont.Face7x13
	w := font.MeasureString(face, s).Ceil()
	h := face.Height
	small := image.NewAlpha(image.Rect(0, 0, w, h))
	d := font.Drawer{Dst: small, Src: image.Opaque, Face: face, Dot: fixed.P(0, face.Ascent)}
	d.DrawString(s)
	src := image.NewUniform(c)
	for sy := 0; sy < h; sy++ {
		for sx := 0; sx < w; sx++ {
			if small.AlphaAt(sx, sy).A < 128 {
				continue
			}
			draw.Draw(img, image.Rect(x+sx*sc, y+sy*sc, x+(sx+1)*sc, y+(sy+1)*sc), src, image.Point{}, draw.Src)
		}
	}
}

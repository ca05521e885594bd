package webui

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"lbd/api"
	"lbd/config"
)

// pairDirector is what the console needs for the pair view and "Save on
// both directors": a director with a [peer]. It is optional, so the
// console keeps working (without the pair view) with a director that
// does not offer it.
type pairDirector interface {
	// PeerName is the configured peer's name, "" without [peer].
	PeerName() string
	// Pair is both directors side by side from the director's cache;
	// false without [peer]. It never waits for the peer.
	Pair() (api.Pair, bool)
	// SaveOnPeer sends the running configuration's shared settings to
	// the peer and records the result.
	SaveOnPeer(ctx context.Context, source string) api.PushResult
}

func (s *Server) pairOf() (pairDirector, bool) {
	pd, ok := s.d.(pairDirector)
	if !ok || pd.PeerName() == "" {
		return nil, false
	}
	return pd, true
}

// pairView is the pair, or nil without a peer.
func (s *Server) pairView() *api.Pair {
	pd, ok := s.pairOf()
	if !ok {
		return nil
	}
	p, ok := pd.Pair()
	if !ok {
		return nil
	}
	return &p
}

// peerName is the peer's name for the edit screens' "Save on both
// directors" button, "" without a peer.
func (s *Server) peerName() string {
	if pd, ok := s.pairOf(); ok {
		return pd.PeerName()
	}
	return ""
}

func (s *Server) pairRoutes(p, a *gin.RouterGroup) {
	p.GET("/pair", s.pairPage)
	p.GET("/pair/live", s.pairLive)
	p.POST("/pair/push", s.csrf, s.pairPushPost)
	a.GET("/pair", s.apiPair)
	a.POST("/pair/push", s.apiPairPush)
	a.POST("/config/shared", s.apiConfigShared)
}

func (s *Server) pairPageData() *page {
	return &page{Title: "Pair", Nav: "pair", Data: s.pairView()}
}

func (s *Server) pairPage(c *gin.Context) {
	s.render(c, http.StatusOK, "pair", s.pairPageData())
}

func (s *Server) pairLive(c *gin.Context) {
	p := s.pairPageData()
	s.fill(c, p)
	s.renderTemplate(c, http.StatusOK, "pair", "live", p)
}

// saveOnPeer runs the peer part of a save on both and says the result
// for both directors.
func (s *Server) saveOnPeer(c *gin.Context) (string, bool) {
	pd, ok := s.pairOf()
	if !ok {
		return "no peer director is configured ([peer] in the configuration)", false
	}
	res := pd.SaveOnPeer(c, source(c))
	return fmt.Sprintf("saved on %s; %s", res.Local, res.Text()), res.Applied
}

// pairPushPost saves this director's shared configuration on the peer
// (the pair view's button, to end a drift).
func (s *Server) pairPushPost(c *gin.Context) {
	msg, ok := s.saveOnPeer(c)
	kind := "ok"
	if !ok {
		kind = "error"
	}
	s.sessions.setFlash(sess(c).id, flash{kind, titleCase(msg) + "."})
	c.Redirect(http.StatusSeeOther, "/pair")
}

func (s *Server) apiPair(c *gin.Context) {
	p := s.pairView()
	if p == nil {
		c.JSON(http.StatusNotFound, api.Error{Error: "no peer director is configured (add [peer] to the configuration)"})
		return
	}
	c.JSON(http.StatusOK, p)
}

func (s *Server) apiPairPush(c *gin.Context) {
	pd, ok := s.pairOf()
	if !ok {
		c.JSON(http.StatusNotFound, api.Error{Error: "no peer director is configured (add [peer] to the configuration)"})
		return
	}
	c.JSON(http.StatusOK, pd.SaveOnPeer(c, source(c)))
}

// apiConfigShared is the receiving side of a save on both: the peer's
// configuration, merged with this director's per-node settings
// (config.MergeShared), validated and applied like any edit. Only an
// admin API token may call it: it is a director's call, not a browser's.
func (s *Server) apiConfigShared(c *gin.Context) {
	if _, isSession := c.Get("session"); isSession {
		c.JSON(http.StatusForbidden, api.Error{Error: "POST /config/shared takes an admin API token (the peer's [peer] token), not a console session"})
		return
	}
	var doc api.SharedConfig
	if !readJSON(c, &doc) {
		return
	}
	if len(doc.TOML) > maxConfigBytes {
		c.JSON(http.StatusRequestEntityTooLarge, api.Error{Error: fmt.Sprintf(
			"the configuration is %d bytes; a configuration file may be at most %d bytes", len(doc.TOML), maxConfigBytes)})
		return
	}
	from := doc.From
	if from == "" {
		from = "the peer"
	}
	incoming, err := config.DecodeUnvalidated("from "+from, []byte(doc.TOML))
	if err != nil {
		s.apiError(c, err)
		return
	}
	src := source(c) + " (save on both from " + from + ")"
	if _, err := s.edit(c, "", src, func(cfg *config.Config) error {
		*cfg = *config.MergeShared(cfg, incoming)
		return nil
	}); err != nil {
		s.apiError(c, err)
		return
	}
	s.log.Info("configuration received from the peer", "source", src)
	c.JSON(http.StatusOK, s.d.Status())
}

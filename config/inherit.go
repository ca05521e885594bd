package config

import "reflect"

// Inherit keeps inheritance alive across an edit made in memory. After
// Parse every inherited setting is spelled out (a real server's port and
// forwarding, the VRRP interface, the sync interface and id, a service's
// family and persistence prefix, ...), so a change to the parent alone
// would leave the children with the old value written explicitly. Inherit
// compares after, the edited copy, with before, the config it was copied
// from: every setting that held its default in before (what Encode leaves
// out) and that the edit did not change is unset again in after, so
// Normalize gives it the default of its new context: the new global
// forwarding, the service's new port, the family of a new VIP. The settings
// named in unset (key paths such as "virtual_server[0].quorum", the fields
// an operator left blank) are unset as well. A setting whose zero value is a
// setting of its own (see ZeroIsSetting) gets its new default instead of
// being unset.
//
// The result is what the same edit made by hand to the file gives, where
// inherited settings are simply not written. Virtual and real servers are
// paired by position, so after must come from an edit that changes objects
// in place or appends them (the console's forms), not one that deletes or
// reorders them.
func Inherit(before, after *Config, unset ...string) {
	in := &inheritance{be: &encoder{c: before}, ae: &encoder{c: after}, unset: map[string]bool{}}
	for _, k := range unset {
		in.unset[k] = true
	}
	in.table("", reflect.ValueOf(before).Elem(), reflect.ValueOf(after).Elem(), nil, nil)
}

// ZeroIsSetting reports whether the zero value of the field named field
// (its Go name) of the schema struct type t is a setting that differs from
// its default (a quorum of 0), so that it is not the same as leaving the
// field unset.
func ZeroIsSetting(t reflect.Type, field string) bool {
	return zeroMeaningful[t.Name()+"."+field]
}

type inheritance struct {
	be, ae *encoder // before's and after's defaults
	unset  map[string]bool
}

// table does Inherit for the struct a (after) at key path against b
// (before), which is invalid when a is new; bparent and aparent are their
// enclosing tables, the context of context-dependent defaults.
func (in *inheritance) table(path string, b, a reflect.Value, bparent, aparent any) {
	t := a.Type()
	adef := in.ae.defaulter(t, aparent)
	var bdef func(any, presence)
	if b.IsValid() {
		bdef = in.be.defaulter(t, bparent)
	}
	follow := map[string]bool{}
	var zeroIsSetting []int
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" || kindOf(f.Type) != scalarField {
			continue
		}
		inherited := bdef != nil && reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) && in.be.omit(b, i, name, bdef)
		if !inherited && !in.unset[joinKey(path, name)] {
			continue
		}
		follow[name] = true
		a.Field(i).SetZero()
		if ZeroIsSetting(t, f.Name) {
			zeroIsSetting = append(zeroIsSetting, i)
		}
	}
	if len(zeroIsSetting) > 0 && adef != nil {
		cp := reflect.New(t)
		cp.Elem().Set(a)
		adef(cp.Interface(), func(k string) bool { return !follow[k] })
		for _, i := range zeroIsSetting {
			a.Field(i).Set(cp.Elem().Field(i))
		}
	}
	var bself any
	if b.IsValid() {
		bself = b.Addr().Interface()
	}
	aself := a.Addr().Interface()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		av := a.Field(i)
		var bv reflect.Value
		if b.IsValid() {
			bv = b.Field(i)
		}
		switch kindOf(f.Type) {
		case tableField:
			if av.Kind() == reflect.Pointer {
				if av.IsNil() {
					continue
				}
				av = av.Elem()
				if bv.IsValid() {
					bv = reflect.Indirect(bv) // invalid when nil: a new table
				}
			}
			in.table(joinKey(path, name), bv, av, bself, aself)
		case tableArrayField:
			for j := 0; j < av.Len(); j++ {
				var be reflect.Value
				if bv.IsValid() && j < bv.Len() {
					be = bv.Index(j)
				}
				in.table(indexKey(joinKey(path, name), j), be, av.Index(j), bself, aself)
			}
		}
	}
}

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
// forwarding, the service's new port, the family of a new VIP. A setting
// whose zero value is a setting of its own (see zeroMeaningful) gets that
// new default instead of being unset.
//
// The result is what the same edit made by hand to the file would give,
// where inherited settings are simply not written. Virtual and real
// servers are paired by position, so after must come from an edit that
// changes objects in place or appends them (the console's forms), not one
// that deletes or reorders them.
func Inherit(before, after *Config) {
	inheritTable(&encoder{c: before}, &encoder{c: after},
		reflect.ValueOf(before).Elem(), reflect.ValueOf(after).Elem(), nil, nil)
}

// inheritTable does Inherit for the struct a (after) against b (before);
// bparent and aparent are their enclosing tables, the context of
// context-dependent defaults.
func inheritTable(be, ae *encoder, b, a reflect.Value, bparent, aparent any) {
	t := a.Type()
	bdef, adef := be.defaulter(t, bparent), ae.defaulter(t, aparent)
	if bdef != nil && adef != nil {
		follow := map[string]bool{}
		var zeroIsSetting []int
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := tomlName(f)
			if name == "" || kindOf(f.Type) != scalarField {
				continue
			}
			if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) || !be.omit(b, i, name, bdef) {
				continue
			}
			follow[name] = true
			a.Field(i).SetZero()
			if zeroMeaningful[t.Name()+"."+f.Name] {
				zeroIsSetting = append(zeroIsSetting, i)
			}
		}
		if len(zeroIsSetting) > 0 {
			cp := reflect.New(t)
			cp.Elem().Set(a)
			adef(cp.Interface(), func(k string) bool { return !follow[k] })
			for _, i := range zeroIsSetting {
				a.Field(i).Set(cp.Elem().Field(i))
			}
		}
	}
	bself, aself := b.Addr().Interface(), a.Addr().Interface()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tomlName(f) == "" {
			continue
		}
		switch kindOf(f.Type) {
		case tableField:
			bv, av := b.Field(i), a.Field(i)
			if av.Kind() == reflect.Pointer {
				if bv.IsNil() || av.IsNil() {
					continue
				}
				bv, av = bv.Elem(), av.Elem()
			}
			inheritTable(be, ae, bv, av, bself, aself)
		case tableArrayField:
			bv, av := b.Field(i), a.Field(i)
			for j := 0; j < min(bv.Len(), av.Len()); j++ {
				inheritTable(be, ae, bv.Index(j), av.Index(j), bself, aself)
			}
		}
	}
}

package aml

// Object is a term that can be appended to an AML byte stream.
type Object interface {
	// AppendAML appends the object's encoding to dst.
	AppendAML(dst []byte) ([]byte, error)
}

// Encode returns the concatenated encodings of objs, a TermList.
func Encode(objs ...Object) ([]byte, error) {
	return appendTerms(nil, objs)
}

func appendTerms(dst []byte, objs []Object) ([]byte, error) {
	var err error
	for _, o := range objs {
		if o == nil {
			return nil, errNilObject
		}
		if dst, err = o.AppendAML(dst); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

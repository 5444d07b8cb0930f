package sqlstore

// scanner is what reading one row needs: *sql.Row and *sql.Rows have it.
type scanner interface{ Scan(dest ...any) error }

// rowsIter is a query's result: *sql.Rows, or a statement's rows on a
// pipelined PostgreSQL transaction (pgRows).
type rowsIter interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// collect reads every row of a query's result with scan and closes rows. It
// takes the query's error too, so a call reads
//
//	rows, err := db.query(ctx, ...)
//	return collect(rows, err, scanUser)
//
// The slice is empty, not nil, when there are no rows.
func collect[T any](rows rowsIter, err error, scan func(scanner) (T, error)) ([]T, error) {
	out := []T{}
	err = each(rows, err, func(s scanner) error {
		v, err := scan(s)
		if err == nil {
			out = append(out, v)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// each calls f for every row of a query's result, stopping at the first
// error, and closes rows.
func each(rows rowsIter, err error, f func(scanner) error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// scanString reads a row of one text column.
func scanString(s scanner) (string, error) {
	var v string
	err := s.Scan(&v)
	return v, err
}

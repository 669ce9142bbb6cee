# Delivered relay messages per second, per server (bar: median; whiskers: min and max run).
load plotdir.'/common.gp'
set output outdir.'/throughput.png'
set title 'Relay throughput: 300-byte offers, 16 in flight per pair'
set ylabel 'delivered messages per second'
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set xrange [-0.6:words(servers)-0.4]
set format y '%.0s%c'
unset key
plot datadir.'/throughput.dat' using 1:3:6:xtic(2) \
         with boxes lc rgb variable, \
     '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0, \
     '' using 1:3:(sprintf('%.0f', $3)) with labels offset 0,1

# When each of the subscribers learned that the user came online (one cycle of the median run):
# when the message was in the subscriber's socket (kernel timestamp), and when the generator read it.
load plotdir.'/common.gp'
set output outdir.'/fanout.png'
set title 'Presence fan-out: time until each subscriber has the message'
set xlabel 'time since the user registered (ms)'
set ylabel 'subscribers (%)'
set yrange [0:100]
set xrange [0:*]
set key bottom right
plot datadir.'/fanout_socket.dat' using ($2/1000):($1*100) with lines lw 2 lc rgb colour('volli') \
         title 'in the subscriber''s socket', \
     datadir.'/fanout_read.dat' using ($2/1000):($1*100) with lines lw 2 dt 2 lc rgb '#7f7f7f' \
         title 'read by the generator'
